"""The StyleGAN2 plug-in (``"stylegan2"``) and its AdaFM variant (``"stylegan2-adafm"``).

The networks are :mod:`ganzoo.architectures.stylegan2.networks` (interchangeable with StyleGAN2-ADA's) and
:mod:`ganzoo.architectures.stylegan2.adafm` (a StyleGAN2 generator whose convolutions carry AdaFM's γ and β; it
shares StyleGAN2's discriminator). The upstream files: :mod:`~ganzoo.architectures.stylegan2.ada_pickle`
(StyleGAN2-ADA's and StyleGAN3's PyTorch pickles), :mod:`~ganzoo.architectures.stylegan2.tf_pickle`
(NVIDIA's TF pickles), :mod:`~ganzoo.architectures.stylegan2.state_dict` (what plain state dicts
tell of their networks' kwargs).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ganzoo.architectures import Architecture, Metadata, register_architecture
from ganzoo.architectures._adafm import fold_for_upload
from ganzoo.architectures.stylegan2 import ada_pickle, tf_pickle, transfer
from ganzoo.architectures.stylegan2.adafm import ARCHITECTURE as ADAFM_NAME, AdaFMGenerator
from ganzoo.architectures.stylegan2.networks import Discriminator, Generator
from ganzoo.architectures.stylegan2.state_dict import infer_discriminator_kwargs, infer_generator_kwargs, state_dict_role
from ganzoo.readers.base import Reader


class StyleGAN2(Architecture):
    """StyleGAN2(-ADA): ``G(z, c)`` through ``G.mapping`` and ``G.synthesis``; truncation of w."""

    name = "stylegan2"
    upstream_names = "the StyleGAN2-ADA PyTorch networks"
    generator_class = Generator
    discriminator_class = Discriminator
    recipes = ("full", "freezed", "adafm", "scratch")
    mergeable = True
    formats = ("stylegan2-ada-pkl", "stylegan2-tf-pkl", "state-dict-pt")
    compile_verified = True
    state_dict_hint = "a generator has mapping.* and synthesis.* tensors, a discriminator b4.conv.weight or b4.out.weight"

    def readers(self) -> Sequence[Reader]:
        """NVIDIA's TF pickles (``dnnlib.tflib.network`` objects) and the PyTorch persistence
        pickles of StyleGAN2-ADA and StyleGAN3, the fallback for any other pickle (its reader
        names what it does not know)."""
        return (
            Reader(tf_pickle.FORMAT, lambda path, head: head.startswith(b"\x80") and b"dnnlib.tflib.network" in head,
                   lambda path, config: tf_pickle.read_stylegan2_tf_pickle(path)),
            Reader(ada_pickle.FORMAT, lambda path, head: head.startswith(b"\x80"),
                   lambda path, config: ada_pickle.read_stylegan2_ada_pickle(path), broad=True),
        )  # fmt: skip

    def state_dict_role(self, state_dict: Any) -> str | None:
        return state_dict_role(state_dict)

    def infer_kwargs(self, role: str, state_dict: Any, where: str) -> tuple[dict, list[str]]:
        infer = infer_discriminator_kwargs if role == "discriminator" else infer_generator_kwargs
        return infer(state_dict, where)

    def metadata(self, generator_kwargs: dict, class_names: Sequence[str] | None = None) -> Metadata:
        return Metadata(
            resolution=int(generator_kwargs["img_resolution"]),
            channels=int(generator_kwargs["img_channels"]),
            num_classes=int(generator_kwargs["c_dim"]),
            latent_dim=int(generator_kwargs["z_dim"]),
            truncation=True,
            class_names=list(class_names) if class_names else None,
            noise=bool((generator_kwargs.get("synthesis_kwargs") or {}).get("use_noise", True)),
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


    def styles(self, G: Any, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return G.mapping(z, c)

    def render_styles(self, G: Any, styles: torch.Tensor) -> torch.Tensor:
        return G.synthesis(styles, noise_mode="const")

    # -- training: StyleGAN2-ADA's objective and settings ------------------------------------

    def training_defaults(self, generator_kwargs: dict, batch: int, recipe: str | None = None) -> dict[str, Any]:
        # StyleGAN2-ADA's: lr 0.0025 (0.002 at 1024², as its paper configurations), lazy R1
        # every 16 minibatches with the 'auto' gamma 0.0002·res²/batch (r1_gamma None), path
        # length (weight 2, half batch, decay 0.01) every 4, style mixing 0.9.
        lr = 0.002 if self.metadata(generator_kwargs).resolution >= 1024 else 0.0025
        return {"lr_G": lr, "lr_D": lr, "r1_gamma": None, "D_reg_interval": 16, "G_reg_interval": 4,
                "pl_weight": 2.0, "pl_batch_shrink": 2, "pl_decay": 0.01, "style_mixing_prob": 0.9}  # fmt: skip

    def objective(self, G: Any, D: Any, augment_pipe: Any, options: Any, penalty: Any) -> Any:
        from ganzoo.architectures.stylegan2.objective import StyleGAN2Loss

        return StyleGAN2Loss(G, D, augment_pipe, r1_gamma=options.r1_gamma, style_mixing_prob=options.style_mixing_prob,
                             pl_weight=options.pl_weight, pl_batch_shrink=options.pl_batch_shrink,
                             pl_decay=options.pl_decay, penalty=penalty, blur_sigma=options.blur_sigma,
                             blur_fade_kimg=options.blur_fade_kimg)  # fmt: skip

    def batch_multiple(self, D: Any) -> int:
        return int((D.init_kwargs.get("epilogue_kwargs") or {}).get("mbstd_group_size", 4) or 1)

    def widest(self, kwargs: dict, resolution: int) -> int:
        synth = kwargs.get("synthesis_kwargs") or kwargs  # G nests them, D has them at the top
        return min(int(synth.get("channel_base", 32768)) // int(resolution), int(synth.get("channel_max", 512)))

    # -- what the recipes and merge need (ganzoo.architectures.stylegan2.transfer) -----------

    def d_blocks(self, D: Any) -> list[tuple[int, int]]:
        return transfer.d_blocks(D)

    def freeze_d(self, D: Any, layers: int) -> Any:
        return transfer.freeze_d(D, layers)

    def g_blocks(self, G: Any) -> list[int]:
        return list(G.synthesis.block_resolutions)

    def with_adafm(self, G: Any, resolutions: Sequence[int]) -> Any:
        return AdaFMGenerator.from_generator(G, resolutions)

    def fresh_networks(self, G: Any, D: Any | None, seed: int) -> tuple[Any, Any]:
        return transfer.fresh_networks(G, D, seed, self.generator_class, self.discriminator_class)

    def fresh_discriminator(self, G: Any, seed: int) -> Any:
        return transfer.fresh_discriminator(G, seed, self.discriminator_class)

    def conditional(self, net: Any, role: str, num_classes: int, seed: int) -> Any:
        if role == "D":
            return transfer.conditional_discriminator(net, num_classes, seed)
        return transfer.conditional_generator(net, num_classes, seed)

    def rescaled_inputs(self, old: Any, new: Any) -> dict[str, tuple[int, float]]:
        return transfer.rescaled_inputs(old, new)


class StyleGAN2AdaFM(StyleGAN2):
    """A StyleGAN2 finetuned with AdaFM: the same sampling, a generator with γ/β per convolution."""

    name = ADAFM_NAME
    generator_class = AdaFMGenerator
    formats = ()  # made by the adafm recipe, never read from upstream files
    compile_verified = False
    def for_upload(self, gan: Any) -> tuple[Any, list[str]]:
        return fold_for_upload(gan)


register_architecture(StyleGAN2())
register_architecture(StyleGAN2AdaFM())
