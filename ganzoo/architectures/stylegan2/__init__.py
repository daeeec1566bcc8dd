"""The StyleGAN2 plug-in (``"stylegan2"``) and its AdaFM variant (``"stylegan2-adafm"``).

The networks are :mod:`ganzoo.architectures.stylegan2.networks` (interchangeable with StyleGAN2-ADA's) and
:mod:`ganzoo.architectures.stylegan2.adafm` (a StyleGAN2 generator whose convolutions carry AdaFM's γ and β; it
shares StyleGAN2's discriminator).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ganzoo.architectures import Architecture, Metadata, register_architecture
from ganzoo.architectures.stylegan2.adafm import ARCHITECTURE as ADAFM_NAME, AdaFMGenerator
from ganzoo.architectures.stylegan2.networks import Discriminator, Generator


class StyleGAN2(Architecture):
    """StyleGAN2(-ADA): ``G(z, c)`` through ``G.mapping`` and ``G.synthesis``; truncation of w."""

    name = "stylegan2"
    generator_class = Generator
    discriminator_class = Discriminator
    recipes = ("full", "freezed", "adafm", "scratch")
    mergeable = True

    def metadata(self, generator_kwargs: dict, class_names: Sequence[str] | None = None) -> Metadata:
        return Metadata(
            resolution=int(generator_kwargs["img_resolution"]),
            channels=int(generator_kwargs["img_channels"]),
            num_classes=int(generator_kwargs["c_dim"]),
            latent_dim=int(generator_kwargs["z_dim"]),
            truncation=True,
            class_names=list(class_names) if class_names else None,
        )

    def generate(self, G: Any, z: torch.Tensor, c: torch.Tensor, *, seeds: Sequence[int], truncation_psi: float,
                 truncation_cutoff: int | None, noise_mode: str) -> torch.Tensor:  # fmt: skip
        ws = G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        if noise_mode != "random":
            return G.synthesis(ws, noise_mode=noise_mode)
        # Per-image noise seeded by the image's own seed, so batching cannot change the bytes.
        device = ws.device
        images = []
        for i, seed in enumerate(seeds):
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                images.append(G.synthesis(ws[i : i + 1], noise_mode="random"))
        return torch.cat(images)


class StyleGAN2AdaFM(StyleGAN2):
    """A StyleGAN2 finetuned with AdaFM: the same sampling, a generator with γ/β per convolution."""

    name = ADAFM_NAME
    generator_class = AdaFMGenerator


register_architecture(StyleGAN2())
register_architecture(StyleGAN2AdaFM())
