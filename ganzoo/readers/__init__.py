"""Safe conversion of foreign checkpoints into ganzoo checkpoint directories, and back.

Readers (each never executes code from the file):

- ``stylegan2-ada-pkl``: StyleGAN2-ADA PyTorch pickles (``stylegan2_ada.py``),
- ``stylegan2-tf-pkl``: original StyleGAN2 TensorFlow pickles (``stylegan2_tf.py``),
- ``state-dict-pt``: plain torch state-dict files (``state_dict.py``).

The format is detected from the file's content, not its name, by asking the readers in order
(:func:`register_reader` adds an architecture's own, asked first); each architecture lists the
formats its networks come in (:attr:`ganzoo.architectures.Architecture.formats`).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ganzoo.readers.base import ForeignCheckpoint, NetworkSpec
from ganzoo.errors import ConversionError

# Bytes that a torch.save file of the legacy (non-zip) format starts with: a pickled magic number.
_LEGACY_TORCH_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_SNIFF_BYTES = 1 << 16

__all__ = ["FORMATS", "ForeignCheckpoint", "NetworkSpec", "Reader", "detect_format", "read_foreign", "register_reader"]


@dataclass(frozen=True)
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
    """

    format: str
    sniff: Callable[[Path, bytes], bool]
    read: Callable[[Path, dict | None], ForeignCheckpoint]
    takes_config: bool = False


def _is_torch_file(path: Path, head: bytes) -> bool:
    return zipfile.is_zipfile(path) or _LEGACY_TORCH_MAGIC in head[:32]


def _read_state_dict(path: Path, config: dict | None) -> ForeignCheckpoint:
    from ganzoo.readers.state_dict import read_state_dict_file

    return read_state_dict_file(path, config=config)


def _read_tf(path: Path, config: dict | None) -> ForeignCheckpoint:
    from ganzoo.readers.stylegan2_tf import read_stylegan2_tf_pickle

    return read_stylegan2_tf_pickle(path)


def _read_ada(path: Path, config: dict | None) -> ForeignCheckpoint:
    from ganzoo.readers.stylegan2_ada import read_stylegan2_ada_pickle

    return read_stylegan2_ada_pickle(path)


# In the order they are asked. The StyleGAN persistence pickle (StyleGAN2-ADA and StyleGAN3
# alike) is the fallback for any other pickle: its reader names what it does not know.
_READERS: list[Reader] = [
    Reader("state-dict-pt", _is_torch_file, _read_state_dict, takes_config=True),
    Reader("stylegan2-tf-pkl", lambda path, head: head.startswith(b"\x80") and b"dnnlib.tflib.network" in head, _read_tf),
    Reader("stylegan2-ada-pkl", lambda path, head: head.startswith(b"\x80"), _read_ada),
]


def __getattr__(name: str):
    # FORMATS: every reader's format, the plug-ins' included (they register on import).
    if name == "FORMATS":
        from ganzoo.architectures import known_architectures

        known_architectures()
        return tuple(r.format for r in _READERS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def reader_takes_config(fmt: str) -> bool:
    """Whether the reader of format ``fmt`` accepts constructor settings (False for unknown formats)."""
    return any(r.format == fmt and r.takes_config for r in _READERS)


def register_reader(reader: Reader) -> Reader:
    """Adds a reader of an architecture's upstream format, asked before the built-in ones (whose
    sniffing is broad: any torch file, any pickle). Returns it.

    Raises:
        ConversionError: a reader of that format is registered already.
    """
    if any(r.format == reader.format for r in _READERS):
        raise ConversionError(f"a reader of {reader.format!r} is registered already")
    _READERS.insert(0, reader)
    return reader


def detect_format(path: str | os.PathLike) -> str:
    """Tells which foreign format a file holds, from its content.

    Raises:
        ConversionError: the file is missing, empty, or of no known format.
    """
    return _reader_for(Path(path)).format


def _reader_for(path: Path) -> Reader:
    from ganzoo.architectures import known_architectures

    known_architectures()  # the built-in plug-ins register their readers on import
    if path.is_dir():
        head = b""  # a folder: only a reader of a folder layout claims it
    elif not path.is_file():
        raise ConversionError(f"{path}: no such file")
    else:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
        if not head:
            raise ConversionError(f"{path}: empty file")
    for reader in _READERS:
        if reader.sniff(path, head):
            return reader
    if path.is_dir():
        raise ConversionError(f"{path}: a folder that no reader recognizes (not a known checkpoint folder layout)")
    raise ConversionError(f"{path}: not a pickle or torch file (unknown format)")


def read_foreign(path: str | os.PathLike, config: dict | None = None) -> ForeignCheckpoint:
    """Reads a foreign checkpoint file safely, with the reader that recognizes it.

    Args:
        path: a ``.pkl`` (StyleGAN2-ADA, StyleGAN3 or StyleGAN2 TF) or ``.pt``/``.pth`` file, or a
            folder in a layout a registered reader claims (BigGAN-PyTorch's weights folder).
        config: constructor kwargs to use instead of inferring them, for formats that lack them
            (state dicts): ``{"generator": {...}, "discriminator": {...}}``.

    Returns:
        The networks found, with the architecture they belong to.
    """
    path = Path(path)
    reader = _reader_for(path)
    if config and not reader.takes_config:
        raise ConversionError(f"{path}: --config applies to state-dict files only ({reader.format} stores its settings)")
    return reader.read(path, config if reader.takes_config else None)
