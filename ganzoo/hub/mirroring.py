"""Mirrors: checkpoints written as plain git repositories at ``DIR/models/ORG/NAME``.

That is the layout a self-hosted Hub mirror such as olah serves from its ``mirrors-path``, so
``HF_ENDPOINT=http://mirror ganzoo pull ORG/NAME`` works unchanged.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterable

from ganzoo._io import atomic_directory
from ganzoo.errors import ChecksumMismatchError, GanzooError
from ganzoo.hub.cache import CARD_NAME, CONFIG_NAME, expected_digests, read_json_config, verify_files
from ganzoo.hub.pulling import pull_checkpoint
from ganzoo.hub.settings import git_environment
from ganzoo.modelcard import render_card, slug
from ganzoo.registry import Entry, find_entry


def mirror(sources: Iterable[str], to: str | os.PathLike, org: str | None = None,
           progress: bool = True) -> list[Path]:  # fmt: skip
    """Writes checkpoints as git repositories at ``TO/models/ORG/NAME`` for a self-hosted mirror.

    Args:
        sources: registry names/aliases, Hub repo ids or checkpoint directories.
        to: the mirror root (olah's ``mirrors-path``).
        org: the organisation to file them under (default: the registry's Hub org, ``ganzoo``).
        progress: show progress bars while pulling.

    Returns:
        The repository folders written.
    """
    if shutil.which("git") is None:
        raise GanzooError("ganzoo mirror needs the git command; install git")
    root = Path(to)
    written = []
    for source in sources:
        directory, repo_id, entry = _mirror_source(source, org, progress)
        target = root / "models" / repo_id
        written.append(_write_git_repo(directory, target, repo_id, entry))
    return written


def _mirror_source(source: str, org: str | None, progress: bool) -> tuple[Path, str, Entry | None]:
    path = Path(source)
    if path.is_dir():
        config = read_json_config(path)
        entry = None
        src = config.get("source") or {}
        if isinstance(src, dict) and isinstance(src.get("registry"), str) and not config.get("lineage"):
            entry = find_entry(src["registry"])
        name = entry.hub.repo.split("/")[1] if entry else slug(path.resolve().name)
        owner = org or (entry.hub.repo.split("/")[0] if entry else "ganzoo")
        return path, f"{owner}/{name}", entry
    result = pull_checkpoint(source, progress=progress)
    repo_id = result.repo_id or (result.entry.hub.repo if result.entry else source)
    if org:
        repo_id = f"{org}/{repo_id.split('/')[1]}"
    return result.path, repo_id, result.entry


def _write_git_repo(directory: Path, target: Path, repo_id: str, entry: Entry | None) -> Path:
    config = read_json_config(directory)
    names = [CONFIG_NAME] + sorted(config.get("files", {}))
    bad = verify_files(directory, expected_digests(config), str(directory), required=config.get("files", {}), remove=False)
    if bad:
        raise ChecksumMismatchError(f"{directory}: {', '.join(bad)} does not match the sha256 in config.json; not mirrored")
    # A fixed date (SOURCE_DATE_EPOCH when set) keeps mirror commits reproducible.
    env = git_environment(GIT_AUTHOR_NAME="ganzoo", GIT_AUTHOR_EMAIL="ganzoo@localhost",
                          GIT_COMMITTER_NAME="ganzoo", GIT_COMMITTER_EMAIL="ganzoo@localhost")  # fmt: skip
    with atomic_directory(target, overwrite=True) as tmp:
        for name in names:
            shutil.copyfile(directory / name, tmp / name)
        card_path = directory / CARD_NAME
        if card_path.is_file():
            shutil.copyfile(card_path, tmp / CARD_NAME)
        else:
            (tmp / CARD_NAME).write_text(str(render_card(config, repo_id=repo_id, entry=entry)), encoding="utf-8")
        for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                     ["commit", "-q", "-m", f"ganzoo mirror of {repo_id}"]):  # fmt: skip
            run = subprocess.run(["git", *args], cwd=tmp, env=env, capture_output=True, text=True)
            if run.returncode != 0:
                raise GanzooError(f"{target}: git {args[0]} failed: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}")
    return target
