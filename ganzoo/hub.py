"""Pull and push ganzoo checkpoints through the Hugging Face Hub; upstream fallback; mirrors; cards.

Pull order for a registry name (``ganzoo pull afhqcat-stylegan2-512``):

1. a checkpoint already converted into ganzoo's own cache (by an earlier upstream fallback or by
   ``ganzoo convert FILE --as NAME``), verified against its ``config.json``;
2. the entry's Hub repo, through ``huggingface_hub.snapshot_download`` (standard HF cache,
   ``HF_TOKEN``, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``), every weight file verified against the
   sha256 in ``config.json`` (and in the registry, where recorded);
3. when the Hub repo is missing or unreachable: the entry's upstream artifact, downloaded
   (resumable, size and sha256 checked) and converted safely into ganzoo's cache.

A Hub repo id (``org/name``) works for any repo in the ganzoo layout. ``HF_ENDPOINT``,
``HF_HUB_OFFLINE``, ``HF_HOME``/``HF_HUB_CACHE`` and ``GANZOO_CACHE`` are read at call time, so
they can change within one process.

A mirror (``ganzoo mirror NAME... --to DIR``) writes checkpoints as plain git repositories at
``DIR/models/ORG/NAME``: the layout a self-hosted Hub mirror such as olah serves from its
``mirrors-path``, so ``HF_ENDPOINT=http://mirror ganzoo pull ORG/NAME`` works unchanged.

A push commits an :class:`Upload` that its caller prepared (:mod:`ganzoo.publish` makes one from
a checkpoint directory): the files, the uploaded ``config.json`` and the card's extra sections.
This module folds no architecture's networks and computes no statistics.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ganzoo._io import atomic_directory, cache_home, sha256_file, verify_sha256
from ganzoo.errors import (
    CheckpointError,
    ChecksumMismatchError,
    DownloadError,
    GanzooError,
    UnknownModelError,
)
from ganzoo.download import direct_download_url, download_url, progress_disabled, root_cause
from ganzoo.modelcard import entry_card, render_card, slug
from ganzoo.registry import Entry, find_entry, is_repo_id, load_registry

CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
SAMPLES_NAME = "samples.png"
GENERATOR_FILE = "generator.safetensors"
# Weight files a pull downloads; training_state.safetensors (optimizer moments) is left out on
# purpose: it is only needed to resume training and can be larger than the networks.
PULL_PATTERNS = [CONFIG_NAME, CARD_NAME, GENERATOR_FILE, "generator_raw.safetensors", "discriminator.safetensors"]
DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "on", "yes", "true"}


# ------------------------------------------------------------------------------------------------
# Environment


def hub_endpoint() -> str:
    """The Hub endpoint: ``HF_ENDPOINT`` (read now, not at import), else huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set: only the local caches are used."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


# ------------------------------------------------------------------------------------------------
# Reachability: asked once per process and endpoint
#
# huggingface_hub retries a metadata request that fails at the connection level five times with
# backoff (1+2+4+8+8 s) before it looks in its cache, for every file: with no network, ranking
# over the registry took minutes. So ganzoo asks the endpoint itself, once, with no retries,
# before its first Hub call; when nothing answers, every later call in the process uses the
# local caches only (``local_files_only``), exactly as with HF_HUB_OFFLINE=1, and one note says so.
# Commands that will need the answer start the question early (:func:`start_hub_check`), so a
# timeout runs while they load.

PROBE_TIMEOUT = 2.0  # seconds ganzoo waits for the endpoint's answer, unless HF_HUB_ETAG_TIMEOUT is set
_GATEWAY_DOWN = (502, 503, 504)  # a proxy or gateway with nothing reachable behind it
_reachability: dict[str, str | None] = {}  # endpoint -> None (it answered) or why it did not
_checks: dict[str, threading.Thread] = {}  # endpoint -> the thread asking it
_noted: set[str] = set()  # endpoints whose note was printed
_generation = 0  # bumped by forget_reachability(): answers of older checks are dropped
_reachability_lock = threading.Lock()


def start_hub_check() -> None:
    """Starts asking the Hub endpoint whether it answers, in a background thread, unless that
    is known or HF_HUB_OFFLINE is set; :func:`hub_unreachable` waits for the answer."""
    if not hub_offline():
        _start_check(hub_endpoint())


def hub_unreachable() -> str | None:
    """Why the Hub endpoint cannot be reached, or None when it answers (or HF_HUB_OFFLINE is set).

    The first call for an endpoint (or :func:`start_hub_check`) sends one ``HEAD ENDPOINT/``
    through huggingface_hub's HTTP client (its proxies, certificates and client factory), without
    retries, waiting at most ``HF_HUB_ETAG_TIMEOUT`` seconds (default 2). Any HTTP answer counts
    as reachable except 502/503/504; a DNS failure, a refused connection, a timeout or a dropped
    connection does not. The answer is kept for the rest of the process; an unreachable endpoint
    gets one note on stderr, the first time the answer is used.
    """
    if hub_offline():
        return None
    endpoint = hub_endpoint()
    thread = _start_check(endpoint)
    if thread is not None:
        thread.join()
    with _reachability_lock:
        why = _reachability.get(endpoint)
        if why is not None and endpoint not in _noted:
            _noted.add(endpoint)
            _went_offline(endpoint, why)
    return why


def hub_local_only() -> bool:
    """True when Hub calls must use only the local caches: HF_HUB_OFFLINE=1, or the endpoint
    did not answer (:func:`hub_unreachable`; asks it on the first call of the process)."""
    return hub_offline() or hub_unreachable() is not None


def learn_unreachable(endpoint: str, why: str) -> None:
    """Records that a Hub call failed at the connection level after the endpoint had answered:
    the rest of the process uses the local caches only (one note)."""
    with _reachability_lock:
        if _reachability.get(endpoint) is None:
            _reachability[endpoint] = why
        if endpoint not in _noted:
            _noted.add(endpoint)
            _went_offline(endpoint, _reachability[endpoint])


def forget_reachability() -> None:
    """Forgets what was learned about every endpoint (the next Hub call asks again)."""
    global _generation
    with _reachability_lock:
        _generation += 1
        _reachability.clear()
        _checks.clear()
        _noted.clear()


def _start_check(endpoint: str) -> threading.Thread | None:
    """The thread asking ``endpoint`` (started now if needed), or None when the answer is known."""
    with _reachability_lock:
        if endpoint in _reachability:
            return None
        thread = _checks.get(endpoint)
        if thread is None:
            thread = threading.Thread(target=_run_check, args=(endpoint, _generation), daemon=True,
                                      name="ganzoo-hub-check")  # fmt: skip
            _checks[endpoint] = thread
            thread.start()
        return thread


def _run_check(endpoint: str, generation: int) -> None:
    why = _probe(endpoint)
    with _reachability_lock:
        if generation == _generation:
            _reachability.setdefault(endpoint, why)


def _probe_timeout() -> float:
    try:
        value = float(os.environ.get("HF_HUB_ETAG_TIMEOUT", ""))
    except ValueError:
        return PROBE_TIMEOUT
    return value if value > 0 else PROBE_TIMEOUT


def _probe(endpoint: str) -> str | None:
    from huggingface_hub import get_session

    timeout = _probe_timeout()
    try:
        response = get_session().head(endpoint + "/", timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - no answer at all, whatever the client's exception classes
        if "timeout" in type(exc).__name__.lower() or "timed out" in str(exc).lower():
            return f"no answer within {timeout:g} s; HF_HUB_ETAG_TIMEOUT=SECONDS waits longer"
        return root_cause(exc)
    if response.status_code in _GATEWAY_DOWN:
        return f"HTTP {response.status_code}"
    return None


def _went_offline(endpoint: str, why: str) -> None:
    import sys

    # huggingface_hub's telemetry (its user-agent's agent detection) would ask the dead endpoint too.
    with contextlib.suppress(Exception):
        from huggingface_hub import constants as hf_constants

        hf_constants.HF_HUB_DISABLE_TELEMETRY = True
    print(f"note: {endpoint} unreachable ({why}): going on offline, with the local caches only "
          "(HF_HUB_OFFLINE=1 skips this check)", file=sys.stderr, flush=True)  # fmt: skip


def hub_cache_dir() -> Path:
    """The standard Hugging Face cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ~/.cache)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def ganzoo_cache_dir() -> Path:
    """ganzoo's own cache (``GANZOO_CACHE``, else ``XDG_CACHE_HOME/ganzoo``, else ~/.cache/ganzoo).

    It holds upstream downloads (``downloads/``), checkpoints converted from them or registered
    with ``ganzoo convert FILE --as NAME`` (``checkpoints/NAME``), and the record of verified files.
    """
    return cache_home().expanduser()


def converted_dir(name: str) -> Path:
    """Where the checkpoint converted for registry entry ``name`` lives in ganzoo's cache."""
    return ganzoo_cache_dir() / "checkpoints" / name


# ------------------------------------------------------------------------------------------------
# Resolving names


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


# ------------------------------------------------------------------------------------------------
# Verification


def _read_json_config(directory: Path) -> dict:
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


# ------------------------------------------------------------------------------------------------
# Pull


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
            config = _read_json_config(local)
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
    config = _read_json_config(local)
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
    config = _read_json_config(path)
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
    except (OSError, *_transport_errors()) as exc:
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
    download = ganzoo_cache_dir() / "downloads" / artifact.filename
    try:
        download_url(artifact.url, download, size=artifact.size, sha256=artifact.sha256, progress=progress)
    except DownloadError as exc:
        # Both ways failed: say why for each, on one line.
        raise DownloadError(f"{entry.name}: Hub: {hub_problem}; upstream: {exc}") from None
    path = register_converted(download, entry.name, artifact_url=artifact.url)
    download.unlink(missing_ok=True)  # the converted checkpoint keeps the file's sha256 and size
    return PullResult(path, "upstream", repo_id=None, entry=entry)


# ------------------------------------------------------------------------------------------------
# Converting into the cache


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
    config_written = _read_json_config(target)
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


# ------------------------------------------------------------------------------------------------
# Push


def samples_png(checkpoint_dir: str | os.PathLike, seeds: Iterable[int] = range(16), truncation_psi: float = 0.7) -> bytes:
    """A PNG grid of samples from a checkpoint (what a pushed card shows)."""
    from ganzoo.checkpoint import GAN

    return gan_samples_png(GAN.load(checkpoint_dir, verify=False), seeds, truncation_psi)


def gan_samples_png(gan: Any, seeds: Iterable[int] = range(16), truncation_psi: float = 0.7) -> bytes:
    """A PNG grid of samples from a GAN in hand (class 0 of a conditional one)."""
    from PIL import Image

    from ganzoo.images import image_grid

    class_idx = 0 if gan.metadata.num_classes else None
    images = gan.sample(seeds=list(seeds), truncation_psi=truncation_psi, class_idx=class_idx)
    grid = image_grid(images)
    image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Upload:
    """What one push commits, prepared by the caller (:func:`ganzoo.publish.prepare_upload` for
    a checkpoint directory): the Hub layer sends it and renders the card, nothing more.

    Attributes:
        files: path in the repo -> content: bytes, or a local file sent as it is
            (``config.json`` and the weight files; not the card or the samples grid).
        config: the ``config.json`` that is uploaded; the model card is rendered from it.
        name: what is uploaded, for the default commit message (a directory's name).
        samples: a PNG grid uploaded as ``samples.png`` and shown in the card; None: no grid.
        card: more keyword arguments of :func:`ganzoo.modelcard.render_card`, the card's extra
            sections (``filter_diversity``).
    """

    files: dict[str, bytes | Path]
    config: dict
    name: str
    samples: bytes | None = None
    card: dict[str, Any] = field(default_factory=dict)

    def commit_files(self, repo_id: str) -> dict[str, bytes | Path]:
        """Every file of the commit: :attr:`files`, the samples grid and the rendered card."""
        files = dict(self.files)
        if self.samples is not None:
            files[SAMPLES_NAME] = self.samples
        card = render_card(self.config, repo_id=repo_id, samples_file=SAMPLES_NAME if self.samples is not None else None,
                           **self.card)  # fmt: skip
        files[CARD_NAME] = str(card).encode("utf-8")
        return files


def check_push_target(repo_id: str) -> None:
    """Refuses a push before any work: a repo id not of the form ``org/name``, or offline mode.

    Raises:
        GanzooError: not a repo id.
        DownloadError: ``HF_HUB_OFFLINE`` is set.
    """
    if not is_repo_id(repo_id):
        raise GanzooError(f"{repo_id!r}: a Hub repo id looks like 'org/name'")
    if hub_offline():
        raise DownloadError(f"push to {repo_id}: HF_HUB_OFFLINE=1 is set; unset it to upload")


def push(
    upload: Upload,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Commits a prepared :class:`Upload` to the Hub in one commit, with its rendered model card.

    Creates the repo (and the branch ``revision``) when needed. To push a checkpoint directory
    use :func:`ganzoo.push` (:func:`ganzoo.publish.push`), which prepares the upload. Files
    already on the branch with the same content are not sent again; when nothing differs, no
    commit is made, a note on stderr says so and the URL of the branch's head commit is returned.
    Endpoints other than huggingface.co get Git LFS uploads, not Xet (:func:`lfs_uploads_for`).

    Args:
        upload: the files, config and card sections to commit.
        repo_id: ``org/name``.
        private: create the repo private.
        revision: the branch to commit to (default ``main``).
        token: Hub token (default: ``HF_TOKEN`` / the saved login).
        commit_message: the commit message.

    Returns:
        The URL of the commit.
    """
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub import errors as hf_errors

    if not isinstance(upload, Upload):
        raise TypeError(f"ganzoo.hub.push takes a prepared Upload, not {type(upload).__name__}; "
                        "push a checkpoint directory with ganzoo.push (ganzoo.publish.push)")  # fmt: skip
    check_push_target(repo_id)
    files = upload.commit_files(repo_id)
    endpoint = hub_endpoint()
    api = HfApi(endpoint=endpoint, token=token, library_name="ganzoo")
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(data) if isinstance(data, Path) else data)
                  for name, data in files.items()]  # fmt: skip
    branch = revision or "main"
    try:
        with lfs_uploads_for(endpoint), _quiet_empty_commit_warning():
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            if branch != "main":
                api.create_branch(repo_id, branch=branch, exist_ok=True, repo_type="model")
            head = api.repo_info(repo_id, revision=branch, repo_type="model").sha
            info = api.create_commit(
                repo_id,
                operations,
                commit_message=commit_message or f"Upload ganzoo checkpoint {upload.name}",
                revision=revision,
                repo_type="model",
            )
    except hf_errors.HfHubHTTPError as exc:
        raise DownloadError(f"push to {repo_id} on {endpoint}: {_first_line(exc)}") from None
    except (OSError, *_transport_errors()) as exc:
        raise DownloadError(f"push to {repo_id}: {endpoint} unreachable ({root_cause(exc)})") from None
    except (ValueError, RuntimeError) as exc:
        # huggingface_hub wraps some HTTP failures (an LFS upload, the card's metadata check).
        cause = exc.__cause__
        what = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(cause, hf_errors.HfHubHTTPError):
            raise DownloadError(f"push to {repo_id} on {endpoint}: {what} {_first_line(cause)}") from None
        if isinstance(cause, (OSError, *_transport_errors())):
            raise DownloadError(f"push to {repo_id}: {endpoint} unreachable ({root_cause(cause)})") from None
        raise
    if head is not None and info.oid == head:
        # huggingface_hub skips a commit whose files are all on the branch already (its own
        # warning is silenced above): say so once, in ganzoo's words.
        import sys

        print(f"note: {repo_id}@{branch} already holds exactly these files; nothing was committed",
              file=sys.stderr, flush=True)  # fmt: skip
    return info.commit_url


def _first_line(exc: BaseException) -> str:
    """One line for a huggingface_hub HTTP error: the status and the server's own first line when
    it sent one (huggingface_hub's message spreads them over several lines), else the message's
    first non-empty line."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    server = [line.strip() for line in str(getattr(exc, "server_message", None) or "").splitlines() if line.strip()]
    if status and server:
        return f"HTTP {status}: {server[0]}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# Hosts whose Hub takes Xet uploads. huggingface_hub uploads through Xet whenever the ``hf_xet``
# package is installed (it asks the endpoint for a Xet write token, then sends the files to a Xet
# storage service); a self-hosted Hub server takes Git LFS uploads only.
_XET_HOSTS = ("huggingface.co", "hf.co")


def takes_xet_uploads(endpoint: str) -> bool:
    """True when ``endpoint`` is the Hugging Face Hub (huggingface.co, hf.co or a subdomain)."""
    from urllib.parse import urlsplit

    host = (urlsplit(endpoint).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in _XET_HOSTS)


@contextlib.contextmanager
def lfs_uploads_for(endpoint: str):
    """Within the block, huggingface_hub uploads through Git LFS instead of Xet when ``endpoint``
    is not the Hugging Face Hub (:func:`takes_xet_uploads`): self-hosted Hub servers cannot take
    Xet uploads. ``HF_HUB_DISABLE_XET`` set in the environment (to any value) is left to decide.

    huggingface_hub reads the switch once, at import, into ``constants.HF_HUB_DISABLE_XET`` and
    asks it at upload time; this sets that value for the block and restores it afterwards.
    """
    from huggingface_hub import constants as hf_constants

    if takes_xet_uploads(endpoint) or "HF_HUB_DISABLE_XET" in os.environ:
        yield
        return
    previous = hf_constants.HF_HUB_DISABLE_XET
    hf_constants.HF_HUB_DISABLE_XET = True
    try:
        yield
    finally:
        hf_constants.HF_HUB_DISABLE_XET = previous


@contextlib.contextmanager
def _quiet_empty_commit_warning():
    """Drops huggingface_hub's 'No files have been modified since last commit' log line (ganzoo
    says it in its own words)."""
    import logging

    class _Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "No files have been modified since last commit" not in record.getMessage()

    logger = logging.getLogger("huggingface_hub.hf_api")
    drop = _Drop()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level error classes of the HTTP clients huggingface_hub may use: requests' are
    OSErrors, but httpx's and httpx2's (huggingface_hub 1.x and 2.x) are not."""
    import importlib

    classes = []
    for module in ("httpx2", "httpx"):
        try:
            classes.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(classes)


# ------------------------------------------------------------------------------------------------
# Mirrors


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
        config = _read_json_config(path)
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
    config = _read_json_config(directory)
    names = [CONFIG_NAME] + sorted(config.get("files", {}))
    bad = verify_files(directory, expected_digests(config), str(directory), required=config.get("files", {}), remove=False)
    if bad:
        raise ChecksumMismatchError(f"{directory}: {', '.join(bad)} does not match the sha256 in config.json; not mirrored")
    env = {**os.environ, "GIT_AUTHOR_NAME": "ganzoo", "GIT_AUTHOR_EMAIL": "ganzoo@localhost",
           "GIT_COMMITTER_NAME": "ganzoo", "GIT_COMMITTER_EMAIL": "ganzoo@localhost"}  # fmt: skip
    # A fixed date (SOURCE_DATE_EPOCH when set) keeps mirror commits reproducible.
    stamp = os.environ.get("SOURCE_DATE_EPOCH")
    if stamp and stamp.isdigit():
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{stamp} +0000"
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


__all__ = [
    "PullResult",
    "Upload",
    "check_push_target",
    "converted_dir",
    "direct_download_url",
    "download_url",
    "entry_card",
    "gan_samples_png",
    "ganzoo_cache_dir",
    "hub_cache_dir",
    "hub_endpoint",
    "lfs_uploads_for",
    "mirror",
    "pull",
    "pull_checkpoint",
    "push",
    "register_converted",
    "render_card",
    "resolve",
    "samples_png",
    "takes_xet_uploads",
    "verify_files",
]
