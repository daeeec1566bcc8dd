"""Common result type of every foreign-checkpoint reader.

A reader turns one foreign file into a :class:`ForeignCheckpoint`: for each network it found
(``G_ema``, ``G``, ``D``), the StyleGAN2-ADA constructor kwargs (plain JSON-able dicts) and a
state dict whose tensor names and layouts are exactly those of the StyleGAN2-ADA PyTorch
networks (``ganzoo.architectures.stylegan2.networks``). Readers never import or execute code from the file.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch


@dataclasses.dataclass
class NetworkSpec:
    """One network read from a foreign file.

    Attributes:
        class_name: ``"Generator"`` or ``"Discriminator"``.
        init_kwargs: the StyleGAN2-ADA constructor kwargs, JSON-able (nested dicts, no EasyDict).
        state_dict: tensor name -> tensor, in the StyleGAN2-ADA layout (float32 unless stored
            otherwise).
    """

    class_name: str
    init_kwargs: dict[str, Any]
    state_dict: dict[str, torch.Tensor]


@dataclasses.dataclass
class ForeignCheckpoint:
    """What a reader found in a foreign file.

    Attributes:
        format: the reader's format (:data:`ganzoo.readers.FORMATS`), e.g. ``"stylegan2-ada-pkl"``.
        G_ema: the EMA generator (the one users sample from); readers that find only one
            generator put it here.
        G: the non-EMA (raw) generator, when the file has it.
        D: the discriminator, when the file has it.
        notes: human-readable remarks, e.g. which constructor kwargs were inferred from tensor
            shapes rather than read from the file.
        extra: other JSON-able information found (e.g. ``training_set_kwargs``).
        architecture: the architecture plug-in whose networks the specs build
            (:mod:`ganzoo.architectures`).
    """

    format: str
    G_ema: NetworkSpec | None = None
    G: NetworkSpec | None = None
    D: NetworkSpec | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    architecture: str = ""  # every reader says which; an empty name is refused when networks are built


def tensor_shape(state_dict: Mapping[str, torch.Tensor], name: str, ndim: int, where: str) -> tuple[int, ...]:
    """Shape of a required tensor, with a clear error when it is absent or has the wrong rank
    (readers inferring constructor settings from a state dict)."""
    from ganzoo.errors import ConversionError

    if name not in state_dict:
        raise ConversionError(f"{where}: missing tensor {name}")
    shape = tuple(state_dict[name].shape)
    if len(shape) != ndim:
        raise ConversionError(f"{where}: tensor {name} has shape {list(shape)}, expected {ndim} dimensions")
    return shape
