"""Small file helpers: atomic writes and checksums."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Returns the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``).

    Elsewhere it is set and restored at once (``os.umask`` can only be read by setting it).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; renames it onto ``path`` only on success.

    The temporary file lives in the same folder, so the final ``os.replace`` is atomic. On any
    exception the temporary file is removed and ``path`` is left as it was. The file gets the
    permissions of a normally created file (``0o666 & ~umask``), not mkstemp's owner-only 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yields a temporary directory beside ``path``; it becomes ``path`` only on success.

    The directory gets the permissions of a normally created one (``0o777 & ~umask``), not
    mkdtemp's owner-only 0700; what the caller writes into it gets its own usual permissions.

    Args:
        path: the final directory. Must not exist unless ``overwrite`` is set, in which case an
            existing directory is replaced only after the new one is complete.
        overwrite: allow replacing an existing directory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        tmp.chmod(0o777 & ~current_umask())
        yield tmp
        if path.exists():
            if not overwrite:
                from ganzoo.errors import GanzooError

                raise GanzooError(f"{path}: already exists (use --overwrite to replace it)")
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def cache_home() -> Path:
    """ganzoo's own cache folder: ``$GANZOO_CACHE``, else ``$XDG_CACHE_HOME/ganzoo`` or ``~/.cache/ganzoo``."""
    if os.environ.get("GANZOO_CACHE"):
        return Path(os.environ["GANZOO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ganzoo"


def _stat_key(st: os.stat_result) -> list[int]:
    # ctime changes on every write and cannot be set back by a program (unlike mtime), so a file
    # whose (size, mtime, ctime, inode, device) is unchanged has unchanged content.
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def verify_sha256(path: str | os.PathLike, expected: str | None) -> None:
    """Checks a file's sha256 against the recorded one.

    A successful check is remembered in ``cache_home()/verified.json`` under the file's real
    path and stat identity, so loading the same unchanged file again does not re-hash hundreds
    of megabytes; any write to the file changes its ctime and forces a full check.

    Raises:
        ChecksumMismatchError: the sha256 differs from ``expected`` (or none was recorded).
    """
    from ganzoo.errors import ChecksumMismatchError

    path = Path(path)
    if not expected:
        raise ChecksumMismatchError(f"{path}: no sha256 recorded for it")
    real = os.path.realpath(path)
    key = _stat_key(os.stat(real))
    registry_path = cache_home() / "verified.json"
    try:
        verified = json.loads(registry_path.read_text(encoding="utf-8"))
        if not isinstance(verified, dict):
            verified = {}
    except (OSError, ValueError):
        verified = {}
    if verified.get(real) == [*key, expected]:
        return
    actual = sha256_file(real)
    if actual != expected:
        raise ChecksumMismatchError(f"{path}: sha256 {actual} != recorded {expected}")
    verified[real] = [*key, expected]
    try:
        atomic_write_text(registry_path, json.dumps(verified, sort_keys=True))
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
