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

import copy
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ganzoo._io import check_output, sha256_file
from ganzoo.readers.base import ForeignCheckpoint, NetworkSpec
from ganzoo.errors import ConversionError, OutputError

# Bytes that a torch.save file of the legacy (non-zip) format starts with: a pickled magic number.
_LEGACY_TORCH_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_SNIFF_BYTES = 1 << 16

__all__ = ["FORMATS", "ForeignCheckpoint", "NetworkSpec", "Reader", "check_export_output", "convert", "detect_format",
           "export", "read_foreign", "register_reader"]  # fmt: skip


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


def _source_digest(path: Path) -> dict:
    """``sha256`` and ``size`` of a source file; of a folder, the sha256 of its listing
    (``"<sha256>  <relative path>"`` lines of its files, sorted) and the files' total size, with
    each file's own under ``files``."""
    if not path.is_dir():
        return {"sha256": sha256_file(path), "size": path.stat().st_size}
    files = {p.relative_to(path).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
             for p in sorted(path.rglob("*")) if p.is_file()}  # fmt: skip
    listing = "".join(f"{entry['sha256']}  {name}\n" for name, entry in sorted(files.items()))
    return {"sha256": hashlib.sha256(listing.encode("utf-8")).hexdigest(),
            "size": sum(entry["size"] for entry in files.values()), "files": files}  # fmt: skip


def foreign_to_gan(path: str | os.PathLike, config: dict | None = None, license: str | None = None):
    """Reads a foreign file and builds a :class:`ganzoo.checkpoint.GAN` from it (strictly)."""
    from ganzoo.checkpoint import gan_from_networks

    path = Path(path)
    foreign = read_foreign(path, config=config)
    if not foreign.architecture:
        raise ConversionError(f"{path}: the {foreign.format} reader did not say which architecture its networks are")
    networks = {
        role: (spec.init_kwargs, spec.state_dict)
        for role, spec in (("G_ema", foreign.G_ema), ("G", foreign.G), ("D", foreign.D))
        if spec is not None
    }
    source = {"file": path.name, "format": foreign.format, **_source_digest(path)}
    if foreign.notes:
        source["notes"] = list(foreign.notes)
    if foreign.extra:
        source["extra"] = copy.deepcopy(foreign.extra)
    gan_config = {"source": source, "lineage": [], "license": license or "unknown"}
    return gan_from_networks(networks, str(path), config=gan_config, architecture=foreign.architecture)


def convert(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: dict | None = None,
    license: str | None = None,
    overwrite: bool = False,
):
    """Converts a foreign checkpoint file into a ganzoo checkpoint directory.

    Args:
        src: the foreign file (see :func:`read_foreign`).
        out_dir: the checkpoint directory to write (atomically: complete or absent).
        config: constructor kwargs for state-dict files (else inferred).
        license: the license of the weights, recorded in ``config.json``.
        overwrite: replace an existing ``out_dir``.

    Returns:
        The converted :class:`ganzoo.checkpoint.GAN`.
    """
    out_dir = check_output(out_dir, "dir", overwrite=overwrite)  # missing or empty, else --overwrite
    gan = foreign_to_gan(src, config=config, license=license)
    gan.save(out_dir, overwrite=overwrite)
    return gan


def check_export_output(out: str | os.PathLike, overwrite: bool = False, architecture=None) -> Path:
    """Checks, before any work, that ``ganzoo export`` can write ``out``; returns it as a Path.

    With ``architecture`` (an :class:`~ganzoo.architectures.Architecture`): its own rule
    (:meth:`~ganzoo.architectures.Architecture.check_export`: one ``.pt`` file, or a folder).
    Without (the checkpoint is still to be downloaded): only what every rule refuses, an
    existing file or non-empty folder without ``overwrite``.

    Raises:
        OutputError: one line naming ``out`` and the problem.
    """
    if architecture is not None:
        return architecture.check_export(out, overwrite=overwrite)
    out = Path(out)
    if not overwrite and os.path.lexists(out) and not (out.is_dir() and not any(out.iterdir())):
        raise OutputError(f"{out}: already exists (use --overwrite to replace it)")
    return out


def export(checkpoint_dir: str | os.PathLike, out_file: str | os.PathLike, verify: bool = True,
           overwrite: bool = False) -> Path:
    """Writes a checkpoint directory in the form its family's official code loads, with
    ``load_state_dict(strict=True)``; returns ``out_file`` (a file, or a folder).

    What is written is the architecture's choice
    (:meth:`~ganzoo.architectures.Architecture.export`): by default one plain state-dict file
    ``{'G': ..., 'D': ..., 'G_ema': ...}`` (the official StyleGAN2-ADA networks load each entry),
    the constructor kwargs under ``'init_kwargs'`` (a plain dict) so the file is self-describing;
    a family whose release has a layout of its own writes that (a weights folder, say).
    Networks that the checkpoint lacks are left out. AdaFM modulation is folded into
    the weights (:meth:`~ganzoo.architectures.Architecture.for_upload`). ``out_file`` is checked
    before the checkpoint is read, written atomically, and an existing one is replaced only with
    ``overwrite``.
    """
    from ganzoo.architectures import get_architecture
    from ganzoo.checkpoint import GAN, read_config

    architecture = get_architecture(read_config(checkpoint_dir)["architecture"])
    out = check_export_output(out_file, overwrite=overwrite, architecture=architecture)  # before the weights are read
    # As published: what any loader of the family reads (AdaFM's gamma/beta folded into weights).
    gan = GAN.load(checkpoint_dir, verify=verify)
    gan, _ = gan.architecture.for_upload(gan)
    return gan.architecture.export(gan, out, overwrite=overwrite)
