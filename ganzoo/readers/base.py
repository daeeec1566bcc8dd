"""What every foreign-checkpoint reader is and returns.

A :class:`Reader` recognizes one upstream file format and turns a file into a
:class:`ForeignCheckpoint`: for each network it found (``G_ema``, ``G``, ``D``), the constructor
kwargs of the family's network class (plain JSON-able dicts) and a state dict whose tensor names
and layouts are exactly that class's, with the family's name. Readers never import or execute
code from the file, and know nothing of :class:`ganzoo.checkpoint.GAN`
(:mod:`ganzoo.conversion` builds it from what they return).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Mapping

import torch


@dataclasses.dataclass
class NetworkSpec:
    """One network read from a foreign file.

    Attributes:
        class_name: the network class's name (``"Generator"``, ``"Discriminator"``).
        init_kwargs: its constructor kwargs, JSON-able (nested dicts, no EasyDict).
        state_dict: tensor name -> tensor, in that class's layout (float32 unless stored
            otherwise).
    """

    class_name: str
    init_kwargs: dict[str, Any]
    state_dict: dict[str, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class Reader:
    """One upstream file format: how to recognize it and how to read it.

    Attributes:
        format: its name (``config.json``'s ``source.format``, the registry's artifact ``format``).
        sniff: ``sniff(path, head) -> bool`` from the file's first 64 KiB (``head``; the path is
            for formats that are zip files); readers are asked in order, the first that
            recognizes the file reads it. A directory source is offered with ``head == b""``:
            a reader whose format is a folder of files claims it there (the others see no
            bytes and decline).
        read: ``read(path, config) -> ForeignCheckpoint``; ``config`` (``--config``: constructor
            kwargs per role) is None unless :attr:`takes_config`.
        takes_config: whether the format lacks the constructor settings (state dicts).
        broad: whether ``sniff`` claims files of other formats too (any pickle): such a reader
            is asked after every specific one and after the generic state-dict reader.
    """

    format: str
    sniff: Callable[[Path, bytes], bool]
    read: Callable[[Path, dict | None], "ForeignCheckpoint"]
    takes_config: bool = False
    broad: bool = False


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
