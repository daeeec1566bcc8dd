"""StyleGAN3 (alias-free) networks, configs T and R, in pure PyTorch.

Written from the paper (Karras et al. 2021, "Alias-Free Generative Adversarial Networks") so that
the state dicts of StyleGAN3 pickles load unchanged (same module, parameter and buffer names).
StyleGAN3 trains with the StyleGAN2 discriminator: use :class:`ganzoo.models.stylegan2.Discriminator`.
"""

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
