"""Push: one commit of an :class:`Upload` that the caller prepared, with its rendered model card.

:mod:`ganzoo.publish` prepares the upload from a checkpoint directory; this module sends it
through huggingface_hub, uploading through Git LFS instead of Xet to endpoints other than the
Hugging Face Hub, and turns the client's failures into one-line errors.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganzoo.download import root_cause
from ganzoo.errors import DownloadError, GanzooError
from ganzoo.hub.cache import CARD_NAME, SAMPLES_NAME
from ganzoo.hub.reachability import transport_errors
from ganzoo.hub.settings import hub_endpoint, hub_offline, xet_switch_set
from ganzoo.modelcard import render_card
from ganzoo.registry import is_repo_id


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
    except (OSError, *transport_errors()) as exc:
        raise DownloadError(f"push to {repo_id}: {endpoint} unreachable ({root_cause(exc)})") from None
    except (ValueError, RuntimeError) as exc:
        # huggingface_hub wraps some HTTP failures (an LFS upload, the card's metadata check).
        cause = exc.__cause__
        what = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(cause, hf_errors.HfHubHTTPError):
            raise DownloadError(f"push to {repo_id} on {endpoint}: {what} {_first_line(cause)}") from None
        if isinstance(cause, (OSError, *transport_errors())):
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

    if takes_xet_uploads(endpoint) or xet_switch_set():
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
