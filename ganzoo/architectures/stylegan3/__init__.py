"""The StyleGAN3 plug-in (``"stylegan3"``): alias-free networks, configs T and R, in pure PyTorch.

Written from the paper (Karras et al. 2021, "Alias-Free Generative Adversarial Networks") so that
the state dicts of StyleGAN3 pickles load unchanged (same module, parameter and buffer names).
StyleGAN3 trains with the StyleGAN2 discriminator (:class:`ganzoo.architectures.stylegan2.networks.Discriminator`),
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

from ganzoo.architectures import register_architecture  # noqa: E402
from ganzoo.architectures.stylegan2 import StyleGAN2  # noqa: E402


class StyleGAN3(StyleGAN2):
    """StyleGAN3: the StyleGAN2 family's kwargs, metadata and discriminator, its own generator
    (``G.mapping`` then ``G.synthesis``, truncation of w, no per-layer noise); not trainable or
    mergeable by this version."""

    name = "stylegan3"
    generator_class = Generator
    recipes = ()
    mergeable = False

    def generate(self, G: Any, z: torch.Tensor, c: torch.Tensor, *, seeds: Sequence[int], truncation_psi: float,
                 truncation_cutoff: int | None, noise_mode: str) -> torch.Tensor:  # fmt: skip
        ws = G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return G.synthesis(ws)  # the synthesis has no noise inputs: every noise mode is the same


register_architecture(StyleGAN3())
