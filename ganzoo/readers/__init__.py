"""Reading foreign checkpoint files safely: the table of readers and format detection.

A reader (:class:`~ganzoo.readers.base.Reader`) recognizes one upstream file format and returns
the networks it found with their settings (:class:`~ganzoo.readers.base.ForeignCheckpoint`);
none executes code from the file. Each family brings the readers of its own formats
(:meth:`ganzoo.architectures.Architecture.readers`: StyleGAN2-ADA/StyleGAN3 and StyleGAN2 TF
pickles, BigGAN-PyTorch's weights folder, GAN_stability's files); this package adds the generic
one for plain torch state dicts (``state-dict-pt``, :mod:`ganzoo.readers.state_dict`), which asks
the families to recognize the networks. :mod:`ganzoo.conversion` builds a
:class:`~ganzoo.checkpoint.GAN` from what a reader returns.

The format is detected from the file's content, not its name, by asking the readers in order:
those added with :func:`register_reader`, every family's specific readers, the state-dict
reader, then the broad ones (a reader of any pickle).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ganzoo.errors import ConversionError
from ganzoo.readers.base import ForeignCheckpoint, NetworkSpec, Reader

# Bytes that a torch.save file of the legacy (non-zip) format starts with: a pickled magic number.
_LEGACY_TORCH_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_SNIFF_BYTES = 1 << 16

__all__ = ["FORMATS", "ForeignCheckpoint", "NetworkSpec", "Reader", "detect_format", "read_foreign", "register_reader"]


def _is_torch_file(path: Path, head: bytes) -> bool:
    return zipfile.is_zipfile(path) or _LEGACY_TORCH_MAGIC in head[:32]


def _read_state_dict(path: Path, config: dict | None) -> ForeignCheckpoint:
    from ganzoo.readers.state_dict import read_state_dict_file  # on first use: it loads the family table

    return read_state_dict_file(path, config=config)


_STATE_DICT = Reader("state-dict-pt", _is_torch_file, _read_state_dict, takes_config=True)
# Readers added with register_reader, asked first (newest first).
_READERS: list[Reader] = []


def _readers() -> list[Reader]:
    """Every reader, in the order they are asked."""
    from ganzoo.architectures import known_architectures  # loads the families (and plug-ins)

    specific: list[Reader] = []
    broad: list[Reader] = []
    seen = {_STATE_DICT.format}
    families = [reader for architecture in known_architectures().values() for reader in architecture.readers()]
    for reader in [*_READERS, *families]:
        if reader.format not in seen:  # a family's readers are shared by its variants
            seen.add(reader.format)
            (broad if reader.broad else specific).append(reader)
    return [*specific, _STATE_DICT, *broad]


def __getattr__(name: str):
    # FORMATS: every reader's format, the families' and plug-ins' included.
    if name == "FORMATS":
        return tuple(r.format for r in _readers())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def reader_takes_config(fmt: str) -> bool:
    """Whether the reader of format ``fmt`` accepts constructor settings (False for unknown formats)."""
    return any(r.format == fmt and r.takes_config for r in _readers())


def register_reader(reader: Reader) -> Reader:
    """Adds a reader, asked before every other (a family's own readers come from its
    :meth:`~ganzoo.architectures.Architecture.readers` instead). Returns it.

    Raises:
        ConversionError: a reader of that format is registered already.
    """
    if any(r.format == reader.format for r in _readers()):
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
    if path.is_dir():
        head = b""  # a folder: only a reader of a folder layout claims it
    elif not path.is_file():
        raise ConversionError(f"{path}: no such file")
    else:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
        if not head:
            raise ConversionError(f"{path}: empty file")
    for reader in _readers():
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
