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
    through the discriminator's own layer list, and seeded fresh networks of a source's shapes
    (the family says which D fits a G: :meth:`discriminator_kwargs`)."""

    def discriminator_kwargs(self, G: Any) -> dict:
        """Constructor kwargs of a discriminator for generator ``G``'s images and classes."""
        raise NotImplementedError

    def fresh_networks(self, G: Any, D: Any | None, seed: int) -> tuple[Any, Any]:
        g_kwargs = {k: v for k, v in copy.deepcopy(G.init_kwargs).items() if k != "adafm_resolutions"}
        if D is None:
            d_kwargs = self.discriminator_kwargs(G)
        else:
            d_kwargs = {k: v for k, v in copy.deepcopy(D.init_kwargs).items() if k != "freeze_layers"}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            G_new = self.generator_class(**g_kwargs).requires_grad_(False)
            return G_new, self.discriminator_class(**d_kwargs).requires_grad_(False)

    def fresh_discriminator(self, G: Any, seed: int) -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.discriminator_class(**self.discriminator_kwargs(G)).requires_grad_(False)

    def d_blocks(self, D: Any) -> list[tuple[int, int]]:
        return [(res, len(layers)) for res, layers in D.layers_from_image()]

    def freeze_d(self, D: Any, layers: int) -> Any:
        kwargs = {k: v for k, v in copy.deepcopy(D.init_kwargs).items() if k != "freeze_layers"}
        if layers:
            kwargs["freeze_layers"] = int(layers)
        return build_strict(type(D), kwargs, cpu_state(D), "discriminator")
