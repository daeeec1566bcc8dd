"""AdaFM (Zhao et al., "On Leveraging Pretrained GANs for Generation with Limited Data", ICML 2020)
on the StyleGAN2 generator (the family-neutral mixins and folding: :mod:`ganzoo.architectures._adafm`).

In the "general part" of the generator, the synthesis convolutions keep their transferred
weights ``W`` frozen and learn adaptive filter modulation: a per-(output, input)-channel scale
``gamma`` and shift ``beta`` of each kernel, ``W' = gamma * W + beta`` (``gamma = 1``,
``beta = 0`` at the start, so the network starts exactly as the source).

Representation: an :class:`AdaFMGenerator` is a :class:`~ganzoo.architectures.stylegan2.networks.Generator`
whose modulated layers (``conv0``/``conv1`` of the blocks listed in ``adafm_resolutions``)
hold

* ``weight`` as a *buffer* (frozen, same name and shape as in a plain StyleGAN2), and
* two extra parameters ``adafm_gamma`` and ``adafm_beta``, shaped ``[out, in, 1, 1]``.

Its constructor kwargs are the plain ones plus ``adafm_resolutions``, and checkpoints record
``"architecture": "stylegan2-adafm"``, so ``ganzoo.load`` rebuilds it strictly.
:func:`fold_adafm` turns it into a standard StyleGAN2 (``W' `` baked into ``weight``) that loads
anywhere.
"""

from __future__ import annotations

from typing import Iterable

from ganzoo.architectures._adafm import AdaFMGeneratorMixin, AdaFMKernel, fold_adafm, fold_generator  # noqa: F401
from ganzoo.architectures.stylegan2.networks import Generator, SynthesisLayer

ARCHITECTURE = "stylegan2-adafm"


class AdaFMSynthesisLayer(AdaFMKernel, SynthesisLayer):
    """A StyleGAN2 :class:`SynthesisLayer` with AdaFM."""


def adafm_layers(G: Generator, resolutions: Iterable[int]) -> list[tuple[str, SynthesisLayer]]:
    """The modulated layers (``conv0``/``conv1``) of StyleGAN2's synthesis blocks at ``resolutions``."""
    layers = []
    for res in resolutions:
        block = getattr(G.synthesis, f"b{res}", None)
        if block is None:
            raise ValueError(f"the generator has no synthesis block at resolution {res}")
        for name in ("conv0", "conv1"):
            if hasattr(block, name):
                layers.append((f"synthesis.b{res}.{name}", getattr(block, name)))
    return layers


class AdaFMGenerator(AdaFMGeneratorMixin, Generator):
    """A StyleGAN2 generator with AdaFM in the synthesis blocks at ``adafm_resolutions``.

    Args:
        *args, **kwargs: the :class:`Generator` constructor arguments.
        adafm_resolutions: resolutions of the blocks whose convolutions are AdaFM-modulated
            (the "general part", usually the highest resolutions).
    """

    plain_class = Generator
    plain_architecture = "stylegan2"
    kernel_class = AdaFMSynthesisLayer
    adafm_layers = staticmethod(adafm_layers)


