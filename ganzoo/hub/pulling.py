"""Pull: a registry name or Hub repo id to a verified checkpoint directory.

Pull order for a registry name: a checkpoint converted earlier into ganzoo's own cache; the
entry's Hub repo (``huggingface_hub.snapshot_download`` into the standard HF cache, files
checked against ``config.json``, a corrupt one fetched once more); when the repo is missing or
the Hub unreachable, the entry's upstream file, downloaded and converted into ganzoo's cache
(:func:`ganzoo.hub.converting.register_converted`). A model bundled in the package needs no network.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo.download import download_url, progress_disabled, root_cause
from ganzoo.errors import CheckpointError, ChecksumMismatchError, DownloadError, GanzooError, UnknownModelError
from ganzoo.hub.cache import (
    CARD_NAME,
    CONFIG_NAME,
    GENERATOR_FILE,
    PULL_PATTERNS,
    converted_dir,
    downloads_dir,
    expected_digests,
    read_json_config,
    verify_files,
)
from ganzoo.hub.converting import register_converted
from ganzoo.hub.reachability import hub_local_only, hub_unreachable, learn_unreachable, transport_errors
from ganzoo.hub.settings import hub_cache_dir, hub_endpoint, hub_offline
from ganzoo.registry import Entry, find_entry, is_repo_id, load_registry


def resolve(name_or_repo: str) -> tuple[Entry | None, str]:
    """Resolves a registry name, alias or Hub repo id.

    Returns:
        ``(entry or None, repo_id)``.

    Raises:
        UnknownModelError: neither a registry name nor a repo id; lists the closest names.
    """
    entry = find_entry(name_or_repo)
    if entry is not None:
        return entry, entry.hub.repo
    if is_repo_id(name_or_repo):
        # A repo id that some registry entry uses gets that entry's upstream fallback too.
        for candidate in load_registry().entries.values():
            if candidate.hub.repo.lower() == name_or_repo.lower():
                return candidate, candidate.hub.repo
        return None, name_or_repo
    raise UnknownModelError(
        f"unknown model {name_or_repo!r}: not a registry name, alias, Hub repo id (org/name) or existing path"
        + load_registry().suggest(name_or_repo)
    )


@dataclass
class PullResult:
    """What :func:`pull_checkpoint` fetched and from where."""

    path: Path
    origin: str  # "cache" (ganzoo's converted cache), "hub", "upstream", or "bundled" (in the package)
    repo_id: str | None = None
    entry: Entry | None = None
    revision: str | None = None
    repaired: tuple[str, ...] = ()


def pull(
    name_or_repo: str,
    revision: str | None = None,
    generator_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
    progress: bool = True,
) -> Path:
    """Fetches a checkpoint into the local cache and returns its directory.

    Args:
        name_or_repo: a registry name or alias (``"imagenet-stylegan2-256"``, ``"cat"``) or a Hub
            repo id in the ganzoo layout (``"org/name"``).
        revision: a branch, tag or commit of the Hub repo (default: the registry's pinned
            revision, else ``main``).
        generator_only: fetch only ``generator.safetensors`` (and config/card).
        token: Hub token (default: ``HF_TOKEN`` / the saved login).
        force_download: download again even when cached.
        progress: show progress bars.

    Returns:
        The checkpoint directory (inside the HF cache or ganzoo's cache), verified.

    Raises:
        UnknownModelError: unknown name, or unknown repo on the endpoint (without upstream fallback).
        DownloadError: the network is unreachable (and nothing is cached), or an artifact needs
            a manual download.
        ChecksumMismatchError: a file stays corrupt after one re-download (it has been removed).
    """
    return pull_checkpoint(name_or_repo, revision, generator_only, token, force_download, progress).path


def pull_checkpoint(
    name_or_repo: str,
    revision: str | None = None,
    generator_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
    progress: bool = True,
) -> PullResult:
    """Like :func:`pull`, and says where the checkpoint came from."""
    entry, repo_id = resolve(name_or_repo)
    if entry is not None and entry.bundled:
        return _pull_bundled(entry)
    if entry is not None and revision is None and not force_download:
        local = converted_dir(entry.name)
        if (local / CONFIG_NAME).is_file():
            config = read_json_config(local)
            bad = verify_files(local, expected_digests(config), entry.name, required=config.get("files", {}))
            if not bad:
                return PullResult(local, "cache", entry=entry)
            # A corrupt converted checkpoint cannot be patched file by file: drop it, fetch anew.
            shutil.rmtree(local, ignore_errors=True)
    revision = revision or (entry.hub.revision if entry else None) or "main"
    try:
        path, repaired = _pull_from_hub(repo_id, revision, generator_only, token, force_download, progress, entry)
        return PullResult(path, "hub", repo_id=repo_id, entry=entry, revision=revision, repaired=tuple(repaired))
    except _HubUnavailable as unavailable:
        if entry is None:
            raise unavailable.error from None
        hub_problem = unavailable.error
    return _pull_from_upstream(entry, hub_problem, progress)


def _pull_bundled(entry: Entry) -> PullResult:
    """A model that ships inside the package: no network, files checked like any pull."""
    from ganzoo.registry import bundled_dir

    local = bundled_dir(entry.name)
    config = read_json_config(local)
    bad = verify_files(local, expected_digests(config), entry.name, required=config.get("files", {}), remove=False)
    if bad:
        raise GanzooError(f"{local}: bundled checkpoint damaged ({', '.join(bad)}); reinstall ganzoo")
    return PullResult(local, "bundled", entry=entry)


class _HubUnavailable(Exception):
    """The repo is missing or the Hub unreachable: the caller may fall back to upstream."""

    def __init__(self, error: GanzooError):
        super().__init__(str(error))
        self.error = error


def _pull_from_hub(repo_id: str, revision: str, generator_only: bool, token, force_download: bool,
                   progress: bool, entry: Entry | None) -> tuple[Path, list[str]]:  # fmt: skip
    from huggingface_hub import snapshot_download

    endpoint = hub_endpoint()
    offline = hub_local_only()  # HF_HUB_OFFLINE=1, or the endpoint did not answer ganzoo's check
    patterns = [CONFIG_NAME, CARD_NAME, GENERATOR_FILE] if generator_only else PULL_PATTERNS
    kwargs: dict[str, Any] = dict(
        repo_id=repo_id,
        revision=revision,
        cache_dir=str(hub_cache_dir()),
        allow_patterns=patterns,
        token=token,
        endpoint=endpoint,
        local_files_only=offline,
        force_download=force_download and not offline,
        library_name="ganzoo",
    )
    if not progress or progress_disabled():  # huggingface_hub reads its own switch only at import
        kwargs["tqdm_class"] = _silent_tqdm_class()
    path = Path(_hub_call(lambda: snapshot_download(**kwargs), repo_id, revision, endpoint, offline))
    config = read_json_config(path)
    files = config.get("files", {})
    if GENERATOR_FILE not in files:
        raise CheckpointError(f"{repo_id}: config.json records no {GENERATOR_FILE}")
    # Only the files this pull asked for are checked (training_state.safetensors is never fetched).
    required = [name for name in files if name in patterns]
    digests = {k: v for k, v in expected_digests(config, entry).items() if k in patterns}
    bad = verify_files(path, digests, repo_id, required=required)
    if not bad:
        return path, []
    # Corrupt cached files have been removed; fetch each once more, then check again.
    if offline:
        raise ChecksumMismatchError(
            f"{repo_id}: cached {', '.join(bad)} did not match the sha256 in config.json and "
            "was removed; run the pull again " + ("without HF_HUB_OFFLINE" if hub_offline() else "while online")
            + " to download it again"
        )
    from huggingface_hub import hf_hub_download

    commit = path.name  # snapshot folders are named by commit hash: re-fetch the same revision
    for name in bad:
        _hub_call(lambda name=name: hf_hub_download(repo_id, name, revision=commit, cache_dir=str(hub_cache_dir()),
                                                    token=token, endpoint=endpoint, force_download=True,
                                                    library_name="ganzoo"),  # fmt: skip
                  repo_id, revision, endpoint, offline)
    still_bad = verify_files(path, {k: digests[k] for k in bad}, repo_id, required=bad)
    if still_bad:
        raise ChecksumMismatchError(
            f"{repo_id}@{revision}: {', '.join(still_bad)} does not match the sha256 recorded in config.json, "
            "even after downloading it again; the bad file was removed"
        )
    return path, bad


def _hub_call(fn, repo_id: str, revision: str, endpoint: str, offline: bool):
    """Runs a huggingface_hub call, turning its errors into one-line ganzoo errors."""
    from huggingface_hub import errors as hf_errors

    try:
        return fn()
    except hf_errors.RevisionNotFoundError:
        raise _HubUnavailable(UnknownModelError(f"{repo_id}: no revision {revision!r} on {endpoint}")) from None
    except hf_errors.GatedRepoError:
        raise _HubUnavailable(DownloadError(
            f"{repo_id}: gated or private repo on {endpoint}; log in (`hf auth login`) or set HF_TOKEN"
        )) from None  # fmt: skip
    except hf_errors.RepositoryNotFoundError:
        raise _HubUnavailable(UnknownModelError(
            f"{repo_id}: no such model repository on {endpoint} (or it is private: set HF_TOKEN)"
        )) from None  # fmt: skip
    except hf_errors.LocalEntryNotFoundError as exc:
        if offline and hub_offline():
            message = f"{repo_id}@{revision}: not in the local cache ({hub_cache_dir()}) and HF_HUB_OFFLINE=1 forbids downloading"
        elif offline:  # the endpoint did not answer ganzoo's check: the cache was the only way
            message = (f"{endpoint}: unreachable ({hub_unreachable()}), and {repo_id}@{revision} is not in the local "
                       f"cache ({hub_cache_dir()}); pull it while online (with HF_HUB_OFFLINE=1 ganzoo uses only "
                       "the local cache, without asking)")  # fmt: skip
        else:
            cause = root_cause(exc)
            learn_unreachable(endpoint, cause)
            message = (f"{endpoint}: unreachable while fetching {repo_id}@{revision} ({cause}); "
                       "with HF_HUB_OFFLINE=1 ganzoo uses only the local cache")  # fmt: skip
        raise _HubUnavailable(DownloadError(message)) from None
    except hf_errors.EntryNotFoundError as exc:
        raise CheckpointError(f"{repo_id}@{revision}: {exc}".splitlines()[0]) from None
    except hf_errors.HfHubHTTPError as exc:
        raise _HubUnavailable(DownloadError(f"{repo_id}@{revision}: {str(exc).splitlines()[0]} ({endpoint})")) from None
    except (OSError, *transport_errors()) as exc:
        # Connection-level failures that huggingface_hub lets through (DNS, refused, reset).
        learn_unreachable(endpoint, root_cause(exc))
        raise _HubUnavailable(DownloadError(
            f"{endpoint}: unreachable while fetching {repo_id}@{revision} ({root_cause(exc)}); "
            "with HF_HUB_OFFLINE=1 ganzoo uses only the local cache"
        )) from None  # fmt: skip


def _silent_tqdm_class():
    """huggingface_hub's tqdm class with every bar disabled (for ``progress=False``)."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    class SilentTqdm(hf_tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentTqdm


def _pull_from_upstream(entry: Entry, hub_problem: GanzooError, progress: bool) -> PullResult:
    artifacts = entry.downloadable
    if not artifacts:
        manual = [a for a in entry.artifacts if a.manual_download]
        if manual:
            raise DownloadError(
                f"{entry.name}: {hub_problem}; the upstream file needs a manual download: "
                f"{manual[0].instructions} (URL: {manual[0].url})"
            )
        raise hub_problem
    if hub_offline():
        raise DownloadError(f"{entry.name}: {hub_problem}; HF_HUB_OFFLINE=1 also rules out the upstream download")
    artifact = artifacts[0]
    download = downloads_dir() / artifact.filename
    try:
        download_url(artifact.url, download, size=artifact.size, sha256=artifact.sha256, progress=progress)
    except DownloadError as exc:
        # Both ways failed: say why for each, on one line.
        raise DownloadError(f"{entry.name}: Hub: {hub_problem}; upstream: {exc}") from None
    path = register_converted(download, entry.name, artifact_url=artifact.url)
    download.unlink(missing_ok=True)  # the converted checkpoint keeps the file's sha256 and size
    return PullResult(path, "upstream", repo_id=None, entry=entry)
