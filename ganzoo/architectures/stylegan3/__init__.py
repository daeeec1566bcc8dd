"""The StyleGAN3 plug-in (``"stylegan3"``): alias-free networks, configs T and R, in pure PyTorch.

Written from the paper (Karras et al. 2021, "Alias-Free Generative Adversarial Networks") so that
the state dicts of StyleGAN3 pickles load unchanged (same module, parameter and buffer names).
StyleGAN3 trains with the StyleGAN2 discriminator (:class:`ganzoo.models.stylegan2.Discriminator`),
which is this architecture's D.
"""

from typing import Any, Sequence

from ganzoo.architectures.stylegan3.networks import (
    FullyConnectedLayer,
    Generator,
    MappingNetwork,
    SynthesisInput,
    SynthesisLayer,
    SynthesisNetwork,
    config_kwargs,
)
from ganzoo.architectures.stylegan3.ops import design_lowpass_filter, filtered_lrelu, upfirdn2d

__all__ = [
    "FullyConnectedLayer", "Generator", "MappingNetwork", "SynthesisInput", "SynthesisLayer",
    "SynthesisNetwork", "config_kwargs", "design_lowpass_filter", "filtered_lrelu", "upfirdn2d",
]  # fmt: skip


import torch  # noqa: E402

from ganzoo.architectures import Architecture, Metadata, register_architecture  # noqa: E402
from ganzoo.models.stylegan2 import Discriminator  # noqa: E402


class StyleGAN3(Architecture):
    """StyleGAN3: ``G.mapping`` then ``G.synthesis``; truncation of w; no per-layer noise."""

    name = "stylegan3"
    generator_class = Generator
    discriminator_class = Discriminator

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
        return G.synthesis(ws)  # the synthesis has no noise inputs: every noise mode is the same


register_architecture(StyleGAN3())
