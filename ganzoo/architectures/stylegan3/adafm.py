"""AdaFM on the StyleGAN3 generator (``"stylegan3-adafm"``): the mechanism of
:mod:`ganzoo.architectures.stylegan2.adafm` applied to StyleGAN3's synthesis layers.

A "block" of StyleGAN3 is the set of layers ``L{i}_{size}_{channels}`` that output at one
sampling rate; ``adafm_resolutions`` lists sampling rates, and the modulated kernels are those
layers' ``weight`` (the final ToRGB layer is never modulated).
"""

from __future__ import annotations

from typing import Iterable

from torch import nn

from ganzoo.architectures._adafm import AdaFMGeneratorMixin, AdaFMKernel
from ganzoo.architectures.stylegan3.networks import Generator, SynthesisLayer

ARCHITECTURE = "stylegan3-adafm"


class AdaFMSynthesisLayer(AdaFMKernel, SynthesisLayer):
    """A StyleGAN3 :class:`SynthesisLayer` with AdaFM."""


def modulated_layers(G: nn.Module, rates: Iterable[int]) -> list[tuple[str, nn.Module]]:
    """The synthesis layers of ``G`` that output at one of the sampling ``rates`` (ToRGB excluded)."""
    wanted = {int(r) for r in rates}
    known = {int(getattr(G.synthesis, n).out_sampling_rate) for n in G.synthesis.layer_names}
    missing = sorted(wanted - known)
    if missing:
        raise ValueError(f"the generator has no synthesis layers at sampling rate {missing[0]}")
    return [(f"synthesis.{name}", getattr(G.synthesis, name)) for name in G.synthesis.layer_names
            if int(getattr(G.synthesis, name).out_sampling_rate) in wanted and not getattr(G.synthesis, name).is_torgb]  # fmt: skip


class AdaFMGenerator(AdaFMGeneratorMixin, Generator):
    """A StyleGAN3 generator with AdaFM in the layers at the sampling rates ``adafm_resolutions``."""

    plain_class = Generator
    plain_architecture = "stylegan3"
    kernel_class = AdaFMSynthesisLayer
    adafm_layers = staticmethod(modulated_layers)
