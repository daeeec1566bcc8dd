"""AdaFM on the GP-GAN generator (``"gpgan-adafm"``), as Zhao et al. (ICML 2020) apply it to the
ImageNet GP-GAN: in the transferred high-resolution blocks (the "general" part: ``resnet_3_*`` …
``resnet_5_*`` at 128²) each convolution kernel W of ``conv_0``/``conv_1`` is frozen and
modulated, W' = γ ⊙ W + β with γ, β ``[C_out, C_in, 1, 1]`` starting at 1 and 0; the other blocks
train. ``adafm_resolutions`` lists the resolutions of the modulated blocks. The mechanism is
:mod:`ganzoo.architectures.stylegan2.adafm`'s.
"""

from __future__ import annotations

from typing import Iterable

from torch import nn

from ganzoo.architectures.gpgan.networks import Generator
from ganzoo.architectures.stylegan2.adafm import AdaFMGeneratorMixin, AdaFMKernel

ARCHITECTURE = "gpgan-adafm"


class AdaFMConv2d(AdaFMKernel, nn.Conv2d):
    """An ``nn.Conv2d`` with AdaFM."""


def modulated_layers(G: nn.Module, resolutions: Iterable[int]) -> list[tuple[str, nn.Module]]:
    """``conv_0``/``conv_1`` of G's blocks at ``resolutions``, as (state-dict name, layer)."""
    wanted = {int(r) for r in resolutions}
    found = dict(G.blocks_by_resolution())
    missing = sorted(wanted - set(found))
    if missing:
        raise ValueError(f"the generator has no blocks at resolution {missing[0]}")
    return [(f"{name}.{conv}", getattr(block, conv)) for res in sorted(wanted) for name, block in found[res]
            for conv in ("conv_0", "conv_1")]  # fmt: skip


class AdaFMGenerator(AdaFMGeneratorMixin, Generator):
    """A GP-GAN generator with AdaFM in the blocks at ``adafm_resolutions``."""

    plain_class = Generator
    plain_architecture = "gpgan"
    kernel_class = AdaFMConv2d
    adafm_layers = staticmethod(modulated_layers)
