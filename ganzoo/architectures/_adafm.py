"""AdaFM (Zhao et al., "On Leveraging Pretrained GANs for Generation with Limited Data", ICML 2020),
family-neutral: the kernel mixin, the generator mixin and folding, which every family with an
AdaFM variant (``stylegan2-adafm``, ``stylegan3-adafm``, ``gpgan-adafm``) builds on.

In the "general part" of the generator, the convolutions keep their transferred weights ``W``
frozen and learn adaptive filter modulation: a per-(output, input)-channel scale ``gamma`` and
shift ``beta`` of each kernel, ``W' = gamma * W + beta`` (``gamma = 1``, ``beta = 0`` at the
start, so the network starts exactly as the source). :func:`fold_adafm` bakes ``W'`` into plain
weights that load anywhere.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable

import torch
from torch import nn

from ganzoo._build import build_strict


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


def fold_for_upload(gan: Any) -> tuple[Any, list[str]]:
    """``for_upload`` of the AdaFM variants: a plain GAN of the family with γ and β folded into
    the kernels (:func:`fold_adafm`) and a ``fold-adafm`` lineage step; its config has no
    ``files`` (nothing is written yet)."""
    folded = fold_adafm(gan)
    if folded is gan:  # no AdaFM layer after all
        return gan, []
    notes = [f"AdaFM folded at push: each modulated kernel W became gamma * W + beta, so this is a plain "
             f"{folded.config['architecture']} checkpoint that loads anywhere (same images as the AdaFM model)"]  # fmt: skip
    folded.config["lineage"] = list(folded.config.get("lineage") or []) + [{"operation": "fold-adafm", "notes": notes}]
    return folded, list(notes)
