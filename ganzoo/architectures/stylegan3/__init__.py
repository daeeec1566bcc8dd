"""The StyleGAN3 plug-in (``"stylegan3"``): alias-free networks, configs T and R, in pure PyTorch.

Written from the paper (Karras et al. 2021, "Alias-Free Generative Adversarial Networks") so that
the state dicts of StyleGAN3 pickles load unchanged (same module, parameter and buffer names).
StyleGAN3 trains with the StyleGAN2 discriminator (:class:`ganzoo.architectures.stylegan2.networks.Discriminator`),
which is this architecture's D.
"""

import dataclasses
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

from ganzoo.architectures import register_architecture  # noqa: E402
from ganzoo.architectures._adafm import fold_for_upload  # noqa: E402
from ganzoo.architectures.stylegan2 import StyleGAN2  # noqa: E402
from ganzoo.architectures.stylegan3.adafm import AdaFMGenerator  # noqa: E402


class StyleGAN3(StyleGAN2):
    """StyleGAN3: the StyleGAN2 family's kwargs, metadata, discriminator, recipes' D handling and
    class-conditioning (its mapping network has the same ``embed``/``fc0``); its own generator
    (``G.mapping`` then ``G.synthesis``, truncation of w, no per-layer noise), objective and
    training settings."""

    name = "stylegan3"
    upstream_names = "the StyleGAN3 PyTorch networks (its D: StyleGAN2-ADA's)"
    generator_class = Generator
    recipes = ("full", "freezed", "adafm", "scratch")
    mergeable = True
    formats = ("stylegan2-ada-pkl",)  # NVIDIA's persistence pickles, recognized by SynthesisInput
    compile_verified = False

    def metadata(self, generator_kwargs: dict, class_names: Sequence[str] | None = None) -> Any:
        return dataclasses.replace(super().metadata(generator_kwargs, class_names), noise=False)

    def generate(self, G: Any, z: torch.Tensor, c: torch.Tensor, *, seeds: Sequence[int], truncation_psi: float,
                 truncation_cutoff: int | None, noise_mode: str) -> torch.Tensor:  # fmt: skip
        ws = G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return G.synthesis(ws)  # the synthesis has no noise inputs: every noise mode is the same

    def render_styles(self, G: Any, styles: torch.Tensor) -> torch.Tensor:
        return G.synthesis(styles)

    def training_defaults(self, generator_kwargs: dict, batch: int, recipe: str | None = None) -> dict[str, Any]:
        # The StyleGAN3 code's settings for its configs T and R: G lr 0.0025, D lr 0.002, no
        # path length (so no lazy G regularization phase), no style mixing; R also blurs D's
        # inputs with sigma 10, fading out over the first batch*200/32 kimg.
        settings = super().training_defaults(generator_kwargs, batch, recipe)  # lazy R1 as StyleGAN2's
        settings.update({"lr_G": 0.0025, "lr_D": 0.002, "pl_weight": 0.0, "style_mixing_prob": 0.0,
                         "G_reg_interval": None})  # fmt: skip
        if generator_kwargs.get("use_radial_filters") or generator_kwargs.get("conv_kernel") == 1:
            settings.update(blur_sigma=10.0, blur_fade_kimg=batch * 200 / 32)
        return settings

    def objective(self, G: Any, D: Any, augment_pipe: Any, options: Any, penalty: Any) -> Any:
        from ganzoo.architectures.stylegan3.objective import StyleGAN3Loss

        return StyleGAN3Loss(G, D, augment_pipe, r1_gamma=options.r1_gamma, style_mixing_prob=options.style_mixing_prob,
                             pl_weight=options.pl_weight, pl_batch_shrink=options.pl_batch_shrink,
                             pl_decay=options.pl_decay, penalty=penalty, blur_sigma=options.blur_sigma,
                             blur_fade_kimg=options.blur_fade_kimg)  # fmt: skip

    def g_blocks(self, G: Any) -> list[int]:
        """The layers' output sampling rates, lowest first (a "block" is the layers at one rate;
        the final ToRGB layer is not counted)."""
        return sorted({int(layer.out_sampling_rate) for layer in synthesis_layers(G) if not layer.is_torgb})

    def with_adafm(self, G: Any, resolutions: Sequence[int]) -> Any:
        return AdaFMGenerator.from_generator(G, resolutions)


def synthesis_layers(G: Any) -> list[Any]:
    """The synthesis layers ``L{i}_{size}_{channels}`` of a StyleGAN3 generator, in order."""
    return [getattr(G.synthesis, name) for name in G.synthesis.layer_names]


class StyleGAN3AdaFM(StyleGAN3):
    """A StyleGAN3 finetuned with AdaFM: a generator with γ/β per modulated layer; published and
    exported folded (plain ``stylegan3``)."""

    name = "stylegan3-adafm"
    generator_class = AdaFMGenerator
    formats = ()  # made by the adafm recipe, never read from upstream files

    def for_upload(self, gan: Any) -> tuple[Any, list[str]]:
        return fold_for_upload(gan)


register_architecture(StyleGAN3())
register_architecture(StyleGAN3AdaFM())
