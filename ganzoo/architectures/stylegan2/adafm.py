"""AdaFM (Zhao et al., "On Leveraging Pretrained GANs for Generation with Limited Data", ICML 2020)
on the StyleGAN2 generator, and the mixins the StyleGAN3 plug-in reuses for its own.

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

import copy
from typing import Any, Iterable

import torch
from torch import nn

from ganzoo._build import build_strict
from ganzoo.architectures.stylegan2.networks import Generator, SynthesisLayer

ARCHITECTURE = "stylegan2-adafm"


class AdaFMKernel:
    """Mixin for a convolution layer class whose kernel is the parameter ``weight``
    ``[out, in, kh, kw]``: as a subclass (``class X(AdaFMKernel, Layer)``) the layer reads
    ``adafm_gamma * W + adafm_beta`` with ``W`` frozen.

    Layers are converted in place (:meth:`convert`), so the plain layer's forward code and
    numerics are used unchanged; only the kernel it reads is modulated.
    """

    @property
    def weight(self) -> torch.Tensor:  # type: ignore[override]
        plain = self._parameters.get("weight")
        if plain is not None:  # during the layer's __init__, before conversion
            return plain
        frozen = self._buffers.get("weight")
        if frozen is None:
            raise AttributeError("weight")
        return frozen * self.adafm_gamma + self.adafm_beta

    @classmethod
    def convert(cls, layer: nn.Module) -> nn.Module:
        """Turns ``layer`` (in place) into an AdaFM layer with identity modulation."""
        if isinstance(layer, cls):
            return layer
        weight = layer._parameters.pop("weight")
        layer.__class__ = cls
        layer._buffers["weight"] = weight.detach()
        out_channels, in_channels = weight.shape[:2]
        shape = [out_channels, in_channels, 1, 1]
        layer.adafm_gamma = nn.Parameter(torch.ones(shape, device=weight.device, dtype=weight.dtype))
        layer.adafm_beta = nn.Parameter(torch.zeros(shape, device=weight.device, dtype=weight.dtype))
        return layer

    def folded_weight(self) -> torch.Tensor:
        """The modulated kernel ``gamma * W + beta``, detached."""
        return self.weight.detach()


class AdaFMSynthesisLayer(AdaFMKernel, SynthesisLayer):
    """A StyleGAN2 :class:`SynthesisLayer` with AdaFM."""


class AdaFMGeneratorMixin:
    """Mixin for a generator class with AdaFM in the blocks at ``adafm_resolutions``
    (``class X(AdaFMGeneratorMixin, Generator)``).

    A family sets :attr:`plain_class` (its generator without AdaFM), :attr:`plain_architecture`,
    :attr:`kernel_class` (its layer class with :class:`AdaFMKernel`) and implements
    :meth:`adafm_layers`. Constructor kwargs are the plain generator's plus
    ``adafm_resolutions``.
    """

    plain_class: type
    plain_architecture: str
    kernel_class: type

    def __init__(self, *args: Any, adafm_resolutions: Iterable[int] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.adafm_resolutions = sorted(int(r) for r in adafm_resolutions)
        self.init_kwargs["adafm_resolutions"] = list(self.adafm_resolutions)
        for _, layer in self.adafm_layers(self, self.adafm_resolutions):
            self.kernel_class.convert(layer)

    @staticmethod
    def adafm_layers(G: nn.Module, resolutions: Iterable[int]) -> list[tuple[str, nn.Module]]:
        """The modulated layers of ``G`` in the blocks at ``resolutions``, as (name, layer)."""
        raise NotImplementedError

    @classmethod
    def from_generator(cls, G: nn.Module, resolutions: Iterable[int]) -> nn.Module:
        """A copy of ``G`` with AdaFM (identity modulation) at ``resolutions``; ``G`` is untouched."""
        kwargs = {k: copy.deepcopy(v) for k, v in G.init_kwargs.items() if k != "adafm_resolutions"}
        kwargs["adafm_resolutions"] = sorted(int(r) for r in resolutions)
        state = {k: v.detach().to("cpu").clone() for k, v in G.state_dict().items()}
        for name, _ in cls.adafm_layers(G, kwargs["adafm_resolutions"]):
            weight = state[f"{name}.weight"]
            state.setdefault(f"{name}.adafm_gamma", torch.ones_like(weight[:, :, :1, :1]))
            state.setdefault(f"{name}.adafm_beta", torch.zeros_like(weight[:, :, :1, :1]))
        new = build_strict(cls, kwargs, state, "AdaFM generator")
        device = next(G.parameters()).device
        return new.to(device).train(G.training)

    def folded(self) -> nn.Module:
        """A plain generator (:attr:`plain_class`) whose weights are these with AdaFM folded in."""
        kwargs = {k: copy.deepcopy(v) for k, v in self.init_kwargs.items() if k != "adafm_resolutions"}
        state = {name: tensor.detach().to("cpu").clone() for name, tensor in self.state_dict().items()
                 if not name.endswith((".adafm_gamma", ".adafm_beta"))}  # fmt: skip
        for name, layer in self.adafm_layers(self, self.adafm_resolutions):
            state[f"{name}.weight"] = layer.folded_weight().to("cpu").clone()
        device = next(self.parameters()).device
        plain = build_strict(self.plain_class, kwargs, state, "folded AdaFM generator")
        return plain.to(device).train(self.training)


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


def fold_generator(G: nn.Module) -> nn.Module:
    """A plain generator whose weights are ``G``'s with AdaFM folded in (``G`` is returned
    unchanged when it has no AdaFM layers)."""
    return G.folded() if isinstance(G, AdaFMGeneratorMixin) else G


def fold_adafm(gan: Any) -> Any:
    """Returns a :class:`ganzoo.checkpoint.GAN` with AdaFM folded into plain weights:
    ``architecture`` becomes the plain family's (``"stylegan2"``, ``"stylegan3"``) and the
    generators plain ones, so the result loads anywhere. GANs without AdaFM are returned as
    they are.

    The result is built by ``gan``'s own class, so this module needs nothing of
    :mod:`ganzoo.checkpoint` (which reaches AdaFM only through :mod:`ganzoo.architectures`)."""
    adafm = [G for G in (gan.G_ema, gan.G) if isinstance(G, AdaFMGeneratorMixin)]
    if not adafm:
        return gan
    config = copy.deepcopy(gan.config)
    config["architecture"] = adafm[0].plain_architecture
    config.pop("files", None)
    training = config.get("training")
    if isinstance(training, dict):
        training["adafm_folded"] = True
    G = fold_generator(gan.G) if gan.G is not None else None
    return type(gan)(fold_generator(gan.G_ema), G, gan.D, config=config)
