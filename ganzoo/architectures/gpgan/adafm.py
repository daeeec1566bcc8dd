"""AdaFM on the GP-GAN generator (``"gpgan-adafm"``), as Zhao et al. (ICML 2020) apply it to the
ImageNet GP-GAN: in the transferred high-resolution blocks (the "general" part: ``resnet_3_*`` …
``resnet_5_*`` at 128²) each convolution kernel W of ``conv_0``/``conv_1`` is frozen and
modulated, W' = γ ⊙ W + β with γ, β ``[C_out, C_in, 1, 1]`` starting at 1 and 0; the other blocks
train. ``adafm_resolutions`` lists the resolutions of the modulated blocks. The mechanism is
:mod:`ganzoo.architectures.stylegan2.adafm`'s.

``adafm_only=True`` (the recipe's ``--adafm-variant paper``, recorded in ``init_kwargs`` so a
reloaded or resumed network keeps it) also freezes what else the general part holds: the biases
of the modulated convolutions, the blocks' 1x1 shortcuts ``conv_s`` and the image layer
``conv_img``, so that there only γ and β train, as in Zhao et al.'s code. Frozen tensors are
buffers under their plain names; :meth:`AdaFMGenerator.folded` gives a plain ``gpgan``
generator either way.
"""

from __future__ import annotations

from typing import Any, Iterable

from torch import nn

from ganzoo._build import build_strict
from ganzoo.architectures._layers import cpu_state
from ganzoo.architectures.gpgan.networks import Generator
from ganzoo.architectures._adafm import AdaFMGeneratorMixin, AdaFMKernel

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

    def __init__(self, *args: Any, adafm_only: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if adafm_only:
            self.init_kwargs["adafm_only"] = True
            for module, names in self._general_rest():
                for name in names:
                    tensor = module._parameters.pop(name, None)
                    if tensor is not None:  # an absent bias stays absent
                        module.register_buffer(name, tensor.detach())

    def _general_rest(self) -> list[tuple[nn.Module, tuple[str, ...]]]:
        """What ``adafm_only`` freezes besides the kernels: (module, tensor names)."""
        found = dict(self.blocks_by_resolution())
        rest: list[tuple[nn.Module, tuple[str, ...]]] = [(self.conv_img, ("weight", "bias"))]
        for res in self.adafm_resolutions:
            for _, block in found[res]:
                rest += [(block.conv_0, ("bias",)), (block.conv_1, ("bias",))]
                if block.learned_shortcut:
                    rest.append((block.conv_s, ("weight",)))
        return rest

    @classmethod
    def from_generator(cls, G: nn.Module, resolutions: Iterable[int], adafm_only: bool = False) -> nn.Module:
        """A copy of ``G`` with AdaFM (identity modulation) at ``resolutions``; with
        ``adafm_only`` the rest of the general part and ``conv_img`` frozen too."""
        new = super().from_generator(G, resolutions)
        if not adafm_only or new.init_kwargs.get("adafm_only"):
            return new
        built = build_strict(cls, {**new.init_kwargs, "adafm_only": True}, cpu_state(new), "AdaFM generator")
        return built.to(next(iter(new.state_dict().values())).device).train(new.training)

    def folded(self) -> nn.Module:
        """A plain ``gpgan`` generator with AdaFM folded in (frozen tensors become parameters again)."""
        only = self.init_kwargs.pop("adafm_only", None)  # not a plain generator's argument
        try:
            return super().folded()
        finally:
            if only is not None:
                self.init_kwargs["adafm_only"] = only
