"""Downloads of upstream release files: resumable, with a progress bar, size and sha256 checked.

Used by the upstream fallback of ``ganzoo pull`` and by ``scripts/publish_zoo.py``.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from pathlib import Path
from typing import Iterator

from ganzoo._io import sha256_file
from ganzoo.errors import ChecksumMismatchError, DownloadError

_CHUNK = 1 << 20
_TRUE = {"1", "on", "yes", "true"}


def progress_disabled() -> bool:
    """True when ``HF_HUB_DISABLE_PROGRESS_BARS`` is set (read now: huggingface_hub reads it at import)."""
    return os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").strip().lower() in _TRUE


def root_cause(exc: BaseException) -> str:
    """The first line of the innermost exception of a chain (what actually went wrong)."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def direct_download_url(url: str) -> str:
    """The URL that serves the file itself.

    Dropbox share links (``?dl=0``) answer with a web page; ``dl=1`` asks Dropbox for the file.
    Every other URL is returned unchanged.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if host == "dropbox.com" or host.endswith(".dropbox.com"):
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != "dl"]
        query.append(("dl", "1"))
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return url


def download_url(
    url: str,
    dest: str | os.PathLike,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Downloads ``url`` to ``dest``: resumable, with a progress bar, size and sha256 checked.

    Bytes go to ``dest.part`` first; an interrupted download resumes from there with an HTTP
    ``Range`` request (or starts over when the server ignores it). ``dest`` appears only once the
    whole file is there and matches ``size`` and ``sha256`` (when given).

    Raises:
        DownloadError: unreachable server, HTTP error, or wrong size.
        ChecksumMismatchError: the file's sha256 differs from ``sha256`` (the file is removed).
    """
    import requests

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and (size is None or dest.stat().st_size == size) and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    part = dest.with_name(dest.name + ".part")
    fetch_url = direct_download_url(url)
    start = part.stat().st_size if part.is_file() else 0
    if size is not None and start > size:
        part.unlink()
        start = 0
    headers = {"User-Agent": "ganzoo"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response = requests.get(fetch_url, stream=True, timeout=timeout, headers=headers, allow_redirects=True)
    except requests.RequestException as exc:
        raise DownloadError(f"{url}: unreachable ({root_cause(exc)})") from None
    with response:
        if response.status_code == 416 and start:  # the .part file already holds everything
            pass
        elif response.status_code not in (200, 206):
            raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")
        else:
            if response.status_code == 200 and start:
                start = 0  # the server ignored Range: start over
            length = response.headers.get("Content-Length")
            total = size or (int(length) + start if length and length.isdigit() else None)
            _stream_to(response, part, start, total, url, progress)
    actual = part.stat().st_size
    if size is not None and actual != size:
        if actual > size:
            part.unlink()
        raise DownloadError(f"{url}: got {actual} bytes, expected {size}" + ("; re-run to resume" if actual < size else ""))
    if sha256 is not None:
        digest = sha256_file(part)
        if digest != sha256:
            part.unlink()
            raise ChecksumMismatchError(f"{url}: sha256 {digest} != recorded {sha256}; the download was removed")
    os.replace(part, dest)
    return dest


def _stream_to(response, part: Path, start: int, total: int | None, url: str, progress: bool) -> None:
    import requests

    show = progress and not progress_disabled()
    with open(part, "ab" if start else "wb") as out, _progress_bar(part.name[: -len(".part")], total, start, show) as advance:
        try:
            for chunk in response.iter_content(chunk_size=_CHUNK):
                out.write(chunk)
                advance(len(chunk))
        except (requests.RequestException, OSError) as exc:
            raise DownloadError(f"{url}: download interrupted ({root_cause(exc)}); re-run to resume") from None


@contextlib.contextmanager
def _progress_bar(label: str, total: int | None, done: int, show: bool) -> Iterator:
    if not show:
        yield lambda n: None
        return
    from ganzoo import _console
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from ganzoo._progress import progress

    columns = [TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    # Not a terminal (a log): a plain line every 10 % (and 30 s) instead of a bar.
    with progress(*columns, console=_console.stderr, transient=False, unit="bytes", rate_unit="B/s") as bar:
        task = bar.add_task(label, total=total, completed=done)
        yield lambda n: bar.advance(task, n)
