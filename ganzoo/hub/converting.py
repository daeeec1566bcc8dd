"""Converting a foreign checkpoint file into ganzoo's cache as a registry entry, with its card.

What ``ganzoo convert FILE --as NAME`` runs for a manually downloaded artifact, and what a pull's
upstream fallback runs after downloading (:mod:`ganzoo.hub.pulling`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ganzoo._io import sha256_file
from ganzoo.errors import ChecksumMismatchError, GanzooError
from ganzoo.hub.cache import CARD_NAME, converted_dir, read_json_config
from ganzoo.modelcard import render_card
from ganzoo.registry import Entry, load_registry


def register_converted(src: str | os.PathLike, name: str, artifact_url: str | None = None,
                       overwrite: bool = True, stand_in: bool = False) -> Path:  # fmt: skip
    """Converts a foreign file into ganzoo's cache as registry entry ``name``.

    This is what ``ganzoo convert FILE --as NAME`` runs for a manually downloaded artifact, and
    what the upstream fallback of a pull runs after downloading. Afterwards ``ganzoo.load(name)``
    finds the checkpoint without network.

    Args:
        src: the foreign checkpoint file.
        name: a registry name or alias.
        artifact_url: where the file came from (recorded in ``config.json``'s ``source``).
        overwrite: replace an earlier conversion.
        stand_in: ``src`` only stands in for the entry's real file (``publish_zoo.py --dry-run``
            with a small fixture): its classes and channels are not checked against the entry.

    Returns:
        The checkpoint directory.

    Raises:
        UnknownModelError: ``name`` is not in the registry.
        ChecksumMismatchError: the registry records a sha256 for the file and it differs.
        ConversionError: the file does not hold networks matching the entry (resolution, classes,
            channels).
    """
    from ganzoo.conversion import foreign_to_gan

    entry = load_registry().get(name)
    src = Path(src)
    if not src.is_file():
        raise GanzooError(f"{src}: no such file")
    digest = sha256_file(src)
    known = [a for a in entry.artifacts if a.sha256]
    if known and digest not in {a.sha256 for a in known}:
        raise ChecksumMismatchError(
            f"{src}: sha256 {digest} matches no upstream file recorded for {entry.name} ({known[0].sha256})"
        )
    config = None
    artifact = next((a for a in entry.artifacts if a.url == artifact_url), None) or (entry.artifacts[0] if entry.artifacts else None)
    # The entry's constructor settings, for formats that do not store them (state dicts) and, for a
    # real upstream file, for formats whose reader otherwise infers them from the tensors (a
    # setting no tensor shows, such as BigGAN's SN_eps, is then the release's).
    from ganzoo.readers import reader_takes_config

    by_entry = artifact is not None and (artifact.format == "state-dict-pt" or (not stand_in and reader_takes_config(artifact.format)))
    if by_entry and (entry.generator or entry.discriminator):
        config = {k: _plain_dict(v) for k, v in (("generator", entry.generator), ("discriminator", entry.discriminator)) if v}
    gan = foreign_to_gan(src, config=config, license=entry.license_name if entry.license == "other" else entry.license)
    resolution = gan.metadata.resolution
    if resolution != entry.resolution:
        from ganzoo.errors import ConversionError

        raise ConversionError(f"{src}: a {resolution}x{resolution} network, but {entry.name} is {entry.resolution}x{entry.resolution}")
    if not stand_in:
        _check_against_entry(src, gan.metadata, entry)
    gan.config["source"].update(registry=entry.name, url=(artifact_url or (artifact.url if artifact else None)))
    gan.config["license"] = entry.license_name if entry.license == "other" else entry.license
    if entry.class_names and gan.metadata.num_classes == len(entry.class_names):
        gan.config["class_names"] = list(entry.class_names)  # --class NAME works on the pulled model
    target = converted_dir(entry.name)
    gan.save(target, overwrite=overwrite)
    config_written = read_json_config(target)
    card = render_card(config_written, repo_id=entry.hub.repo, entry=entry)
    from ganzoo._io import atomic_write_text

    atomic_write_text(target / CARD_NAME, str(card))
    return target


def _check_against_entry(src: Path, metadata: Any, entry: Entry) -> None:
    """Refuses networks whose classes or channels differ from what the registry entry says.

    Classes: the entry's ``c_dim`` (or its generator's), when stated. Channels: its generator's
    ``img_channels``, else 3 (the registry's convention, as ``rank`` reads it).
    """
    from ganzoo.errors import ConversionError

    def classes(n: int) -> str:
        return "unconditional" if n == 0 else f"{n} classes" if n != 1 else "1 class"

    stated = entry.generator or {}
    c_dim = entry.c_dim if entry.c_dim is not None else stated.get("c_dim")
    got = metadata.num_classes
    if c_dim is not None and got != int(c_dim):
        what = "an unconditional network" if got == 0 else f"a network with {classes(got)}"
        raise ConversionError(f"{src}: {what}, but {entry.name} is {classes(int(c_dim))}"
                              if int(c_dim) == 0 else f"{src}: {what}, but {entry.name} has {classes(int(c_dim))}")  # fmt: skip
    channels = int(stated.get("img_channels", 3))
    got = metadata.channels
    if got != channels:
        raise ConversionError(f"{src}: a {got}-channel network, but {entry.name} has {channels}-channel images")


def _plain_dict(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain_dict(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain_dict(v) for v in value]
    return value
