"""Recipe hooks shared by families whose discriminator lists its layers from the image
(``D.layers_from_image() -> [(resolution, [layer, ...]), ...]``) and freezes the first ones when
built with ``freeze_layers`` (GP-GAN, BigGAN)."""

from __future__ import annotations

import copy
from typing import Any

import torch

from ganzoo._build import build_strict


def cpu_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``net``'s state dict."""
    return {k: v.detach().to("cpu").clone() for k, v in net.state_dict().items()}


class FreezableD:
    """Mixin for an :class:`~ganzoo.architectures.Architecture`: FreezeD and ``--general-d``
    through the discriminator's own layer list."""

    def d_blocks(self, D: Any) -> list[tuple[int, int]]:
        return [(res, len(layers)) for res, layers in D.layers_from_image()]

    def freeze_d(self, D: Any, layers: int) -> Any:
        kwargs = {k: v for k, v in copy.deepcopy(D.init_kwargs).items() if k != "freeze_layers"}
        if layers:
            kwargs["freeze_layers"] = int(layers)
        return build_strict(type(D), kwargs, cpu_state(D), "discriminator")
