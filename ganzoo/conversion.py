"""Foreign checkpoints into ganzoo :class:`~ganzoo.checkpoint.GAN` bundles, and back.

The layer above both :mod:`ganzoo.readers` (which reads a foreign file into networks and their
settings, a :class:`~ganzoo.readers.base.ForeignCheckpoint`, and knows nothing of ``GAN``) and
:mod:`ganzoo.checkpoint` (the bundle): it builds the bundle from what a reader returns
(:func:`foreign_to_gan`), writes it as a checkpoint directory (:func:`convert`, ``ganzoo
convert``), and writes a checkpoint directory in the form its family's own code loads
(:func:`export`, ``ganzoo export``). What an export's format has no place for (the class names,
the license) travels in a sidecar JSON (:func:`sidecar_path`) that :func:`convert` reads back.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

from ganzoo._io import atomic_write_text, check_output, sha256_file
from ganzoo.errors import ConversionError, OutputError
from ganzoo.readers import read_foreign

__all__ = ["check_export_output", "convert", "export", "foreign_to_gan", "sidecar_path"]

#: The sidecar's name inside a folder export; beside a file export it is ``<file>.ganzoo.json``.
SIDECAR = "ganzoo.json"


def sidecar_path(export: str | os.PathLike) -> Path:
    """Where ``ganzoo export`` writes, and ``ganzoo convert`` reads, what the export's format has
    no place for (``{"architecture", "class_names", "license"}``): ``ganzoo.json`` inside a
    folder, ``<file>.ganzoo.json`` beside a file."""
    export = Path(export)
    return export / SIDECAR if export.is_dir() else _beside(export)


def _beside(export: Path) -> Path:
    """The sidecar of a file export: ``<file>.ganzoo.json``."""
    return export.with_name(export.name + "." + SIDECAR)


def _read_sidecar(path: Path) -> dict:
    """The sidecar of an export at ``path``, or {} when there is none."""
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConversionError(f"{sidecar}: not a readable JSON sidecar ({exc})") from None
    names = data.get("class_names") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not (names is None or (isinstance(names, list) and all(isinstance(n, str) for n in names))):
        raise ConversionError(f"{sidecar}: expected a JSON object whose 'class_names' is a list of strings")
    return data


def _write_sidecar(gan, out: Path) -> Path:
    data = {"architecture": gan.architecture.name, "class_names": gan.class_names,
            "license": gan.config.get("license", "unknown")}  # fmt: skip
    path = sidecar_path(out)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


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


def foreign_to_gan(path: str | os.PathLike, config: dict | None = None, license: str | None = None,
                   class_names: Sequence[str] | None = None):  # fmt: skip
    """Reads a foreign file and builds a :class:`ganzoo.checkpoint.GAN` from it (strictly).

    ``license`` and ``class_names``, when not given, come from the sidecar a ``ganzoo export``
    wrote beside the file (:func:`sidecar_path`), else the license is ``"unknown"`` and the
    classes unnamed. Class names must be as many as the generator's classes.
    """
    from ganzoo.checkpoint import gan_from_networks

    path = Path(path)
    sidecar = _read_sidecar(path)
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
    if sidecar:
        source["sidecar"] = sidecar_path(path).name
    gan_config = {"source": source, "lineage": [], "license": license or sidecar.get("license") or "unknown"}
    gan = gan_from_networks(networks, str(path), config=gan_config, architecture=foreign.architecture)
    names = list(class_names) if class_names is not None else sidecar.get("class_names")
    if names:
        classes = gan.metadata.num_classes
        if len(names) != classes:
            raise ConversionError(f"{path}: {len(names)} class names for a generator with {classes} classes")
        gan.config["class_names"] = names
    return gan


def convert(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: dict | None = None,
    license: str | None = None,
    overwrite: bool = False,
    class_names: Sequence[str] | None = None,
):
    """Converts a foreign checkpoint file into a ganzoo checkpoint directory.

    Args:
        src: the foreign file (see :func:`read_foreign`).
        out_dir: the checkpoint directory to write (atomically: complete or absent).
        config: constructor kwargs for state-dict files (else inferred).
        license: the license of the weights, recorded in ``config.json`` (default: the export
            sidecar's, else ``"unknown"``).
        overwrite: replace an existing ``out_dir``.
        class_names: the classes' names (default: the export sidecar's, else unnamed).

    Returns:
        The converted :class:`ganzoo.checkpoint.GAN`.
    """
    out_dir = check_output(out_dir, "dir", overwrite=overwrite)  # missing or empty, else --overwrite
    gan = foreign_to_gan(src, config=config, license=license, class_names=class_names)
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
        out = architecture.check_export(out, overwrite=overwrite)
    else:
        out = Path(out)
        if not overwrite and os.path.lexists(out) and not (out.is_dir() and not any(out.iterdir())):
            raise OutputError(f"{out}: already exists (use --overwrite to replace it)")
    beside = _beside(Path(out))
    if not overwrite and os.path.lexists(beside):
        raise OutputError(f"{beside}: already exists (use --overwrite to replace it)")
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
    ``overwrite``. The class names and license follow in the sidecar (:func:`sidecar_path`).
    """
    from ganzoo.architectures import get_architecture
    from ganzoo.checkpoint import GAN, read_config

    architecture = get_architecture(read_config(checkpoint_dir)["architecture"])
    out = check_export_output(out_file, overwrite=overwrite, architecture=architecture)  # before the weights are read
    # As published: what any loader of the family reads (AdaFM's gamma/beta folded into weights).
    gan = GAN.load(checkpoint_dir, verify=verify)
    gan, _ = gan.architecture.for_upload(gan)
    written = gan.architecture.export(gan, out, overwrite=overwrite)
    _write_sidecar(gan, written)
    return written
