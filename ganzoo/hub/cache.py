"""ganzoo's files in the caches: the checkpoint layout, where converted checkpoints live, and
checking cached files against the sha256 digests that ``config.json`` (and the registry) record.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterable

from ganzoo._io import verify_sha256
from ganzoo.errors import CheckpointError, ChecksumMismatchError
from ganzoo.hub.settings import ganzoo_cache_dir
from ganzoo.registry import Entry

CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
SAMPLES_NAME = "samples.png"
GENERATOR_FILE = "generator.safetensors"
# Weight files a pull downloads; training_state.safetensors (optimizer moments) is left out on
# purpose: it is only needed to resume training and can be larger than the networks.
PULL_PATTERNS = [CONFIG_NAME, CARD_NAME, GENERATOR_FILE, "generator_raw.safetensors", "discriminator.safetensors"]


def converted_dir(name: str) -> Path:
    """Where the checkpoint converted for registry entry ``name`` lives in ganzoo's cache."""
    return ganzoo_cache_dir() / "checkpoints" / name


def downloads_dir() -> Path:
    """Where upstream files are downloaded before their conversion, in ganzoo's cache."""
    return ganzoo_cache_dir() / "downloads"


def read_json_config(directory: Path) -> dict:
    """A checkpoint directory's ``config.json``, checked to be a ganzoo checkpoint config."""
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{directory}: no config.json (not a ganzoo checkpoint)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(config, dict) or "format_version" not in config or not isinstance(config.get("files", {}), dict):
        raise CheckpointError(f"{path}: not a ganzoo checkpoint config (no format_version or files)")
    return config


def _remove_cached_file(path: Path) -> None:
    """Removes a file, and the blob behind it when it is a Hugging Face cache symlink."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_symlink():
            target = path.resolve()
            path.unlink()
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
        else:
            path.unlink()


def verify_files(directory: str | os.PathLike, expected: dict[str, str], what: str,
                 required: Iterable[str] = (), remove: bool = True) -> list[str]:  # fmt: skip
    """Checks files of ``directory`` against sha256 digests; removes every file that differs.

    Args:
        directory: the checkpoint directory.
        expected: file name -> sha256.
        what: names the checkpoint in messages (repo id or registry name).
        required: files that must be present (others may be absent, e.g. with --generator-only).
        remove: remove files that differ (cache files, fetched again); False for the user's own
            directories, which are never altered.

    Returns:
        The names of the files that differ (removed when ``remove``); empty when all match.

    Raises:
        CheckpointError: a required file is missing.
    """
    directory = Path(directory)
    bad = []
    for name, digest in sorted(expected.items()):
        path = directory / name
        if not path.exists():
            if name in required:
                raise CheckpointError(f"{what}: {name} is missing (config.json records it)")
            continue
        try:
            # Remembers a passed check by the file's stat identity (size, mtime, ctime, inode):
            # a cached pull of unchanged files costs no re-hash, any write forces a full one.
            verify_sha256(path, digest)
        except ChecksumMismatchError:
            if remove:
                _remove_cached_file(path)
            bad.append(name)
    return bad


def expected_digests(config: dict, entry: Entry | None = None) -> dict[str, str]:
    """sha256 of each weight file from ``config.json``, plus those the registry records.

    Raises:
        ChecksumMismatchError: config.json and the registry disagree about a file.
    """
    digests = {name: meta.get("sha256") for name, meta in config.get("files", {}).items() if isinstance(meta, dict)}
    digests = {k: v for k, v in digests.items() if isinstance(v, str)}
    if entry is not None:
        for name, digest in entry.hub.sha256:
            if name in digests and digests[name] != digest:
                raise ChecksumMismatchError(
                    f"{entry.hub.repo}: config.json records sha256 {digests[name]} for {name}, "
                    f"the registry entry {entry.name!r} records {digest}"
                )
            digests[name] = digest
    return digests
