"""Safe conversion of foreign checkpoints into ganzoo checkpoint directories, and back.

Readers (each never executes code from the file):

- ``stylegan2-ada-pkl``: StyleGAN2-ADA PyTorch pickles (``stylegan2_ada.py``),
- ``stylegan2-tf-pkl``: original StyleGAN2 TensorFlow pickles (``stylegan2_tf.py``),
- ``state-dict-pt``: plain torch state-dict files (``state_dict.py``).

The format is detected from the file's content, not its name.
"""

from __future__ import annotations

import copy
import os
import zipfile
from pathlib import Path

import torch

from ganzoo._io import atomic_path, check_output, sha256_file
from ganzoo.readers.base import ForeignCheckpoint, NetworkSpec
from ganzoo.errors import ConversionError

FORMATS = ("stylegan2-ada-pkl", "stylegan2-tf-pkl", "state-dict-pt")
# Bytes that a torch.save file of the legacy (non-zip) format starts with: a pickled magic number.
_LEGACY_TORCH_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_SNIFF_BYTES = 1 << 16

__all__ = ["FORMATS", "ForeignCheckpoint", "NetworkSpec", "convert", "detect_format", "export", "read_foreign"]


def detect_format(path: str | os.PathLike) -> str:
    """Tells which foreign format a file holds, from its content.

    Raises:
        ConversionError: the file is missing, empty, or of no known format.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        return "state-dict-pt"
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head:
        raise ConversionError(f"{path}: empty file")
    if _LEGACY_TORCH_MAGIC in head[:32]:
        return "state-dict-pt"
    if not head.startswith(b"\x80"):
        raise ConversionError(f"{path}: not a pickle or torch file (unknown format)")
    if b"dnnlib.tflib.network" in head:
        return "stylegan2-tf-pkl"
    return "stylegan2-ada-pkl"


def read_foreign(path: str | os.PathLike, config: dict | None = None) -> ForeignCheckpoint:
    """Reads a foreign checkpoint file safely.

    Args:
        path: a ``.pkl`` (StyleGAN2-ADA or StyleGAN2 TF) or ``.pt``/``.pth`` file.
        config: constructor kwargs to use instead of inferring them, for state-dict files:
            ``{"generator": {...}, "discriminator": {...}}``.

    Returns:
        The networks found, in the StyleGAN2-ADA layout.
    """
    fmt = detect_format(path)
    if fmt == "state-dict-pt":
        from ganzoo.readers.state_dict import read_state_dict_file

        return read_state_dict_file(path, config=config)
    if config:
        raise ConversionError(f"{path}: --config applies to state-dict files only ({fmt} stores its settings)")
    if fmt == "stylegan2-tf-pkl":
        from ganzoo.readers.stylegan2_tf import read_stylegan2_tf_pickle

        return read_stylegan2_tf_pickle(path)
    from ganzoo.readers.stylegan2_ada import read_stylegan2_ada_pickle

    return read_stylegan2_ada_pickle(path)


def foreign_to_gan(path: str | os.PathLike, config: dict | None = None, license: str | None = None):
    """Reads a foreign file and builds a :class:`ganzoo.checkpoint.GAN` from it (strictly)."""
    from ganzoo.checkpoint import gan_from_networks

    path = Path(path)
    foreign = read_foreign(path, config=config)
    networks = {
        role: (spec.init_kwargs, spec.state_dict)
        for role, spec in (("G_ema", foreign.G_ema), ("G", foreign.G), ("D", foreign.D))
        if spec is not None
    }
    source = {
        "file": path.name,
        "format": foreign.format,
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
    }
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


def export(checkpoint_dir: str | os.PathLike, out_file: str | os.PathLike, verify: bool = True,
           overwrite: bool = False) -> Path:
    """Writes a checkpoint directory as a plain state-dict file ``{'G': ..., 'D': ..., 'G_ema': ...}``.

    The official StyleGAN2-ADA networks load each entry with ``load_state_dict(strict=True)``;
    the constructor kwargs go under ``'init_kwargs'`` (a plain dict) so the file is self-describing.
    Networks that the checkpoint lacks are left out. AdaFM modulation is folded into the weights
    (:meth:`~ganzoo.architectures.Architecture.for_upload`).
    An existing ``out_file`` is replaced only with ``overwrite``.
    """
    from ganzoo.checkpoint import GAN

    check_output(out_file, suffixes=(".pt", ".pth"), overwrite=overwrite)  # before the checkpoint is read
    # As published: what any loader of the family reads (AdaFM's gamma/beta folded into weights).
    gan = GAN.load(checkpoint_dir, verify=verify)
    gan, _ = gan.architecture.for_upload(gan)
    payload: dict = {role: {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                     for role, net in gan.networks().items()}  # fmt: skip
    payload["init_kwargs"] = {role: copy.deepcopy(net.init_kwargs) for role, net in gan.networks().items()}
    out_file = Path(out_file)
    with atomic_path(out_file) as tmp, open(tmp, "wb") as f:
        # A file object, not the path: torch names the zip records after the (random) temporary file.
        torch.save(payload, f)
    return out_file
