"""Small file helpers: atomic writes and checksums."""

from __future__ import annotations

import contextlib
import errno
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


# ------------------------------------------------------------------------------------------------
# Outputs: checked before the work, and one line (OutputError) when they cannot be written.

# errnos of a failed write that names no file (a full, over-quota or read-only disk).
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def _nearest_folder(path: Path) -> Path:
    """The nearest existing folder above ``path`` (where its missing parents would be created).

    Raises:
        OutputError: something on the way exists but is not a directory.
    """
    from ganzoo.errors import OutputError

    folder = Path(os.path.abspath(path)).parent
    while not folder.is_dir():
        if os.path.lexists(folder):
            raise OutputError(f"{path}: cannot write ({folder} is not a directory)")
        if folder.parent == folder:
            break
        folder = folder.parent
    return folder


def _output_error(path: str | os.PathLike, exc: OSError):
    """``exc`` (from writing ``path`` or its temporary twin) as one line naming ``path``."""
    from ganzoo.errors import OutputError

    if exc.errno in (errno.ENOTDIR, errno.EEXIST):  # a file where a parent folder should be
        try:
            _nearest_folder(Path(path))
        except OutputError as explained:
            return explained
    error = OutputError(f"{path}: cannot write ({exc.strerror or exc})")
    error.errno, error.strerror, error.filename = exc.errno, exc.strerror, str(path)
    return error


def _is_write_error(exc: OSError, tmp: Path) -> bool:
    """Whether an error raised while filling ``tmp`` is a failure to write it (not, say, a read)."""
    if exc.filename is None:
        return exc.errno in _WRITE_ERRNOS
    try:
        name = Path(os.fsdecode(exc.filename))
    except TypeError:
        return False
    return name == tmp or tmp in name.parents


@contextlib.contextmanager
def _writing(path: str | os.PathLike, tmp: Path) -> Iterator[None]:
    """Turns a failure to write ``tmp`` (the caller filling it) into one line naming ``path``;
    other errors (reading a source, a GanzooError) pass through unchanged."""
    from ganzoo.errors import GanzooError

    try:
        yield
    except OSError as exc:
        if isinstance(exc, GanzooError) or not _is_write_error(exc, tmp):
            raise
        raise _output_error(path, exc) from None


def _probe(folder: Path, path: Path) -> None:
    """Creates and removes a file in ``folder``: the one sure test (permissions, ACLs, read-only
    mounts, also as root, where the permission bits do not stop writes)."""
    from ganzoo.errors import OutputError

    try:
        fd, name = tempfile.mkstemp(prefix=".ganzoo-write-check.", dir=folder)
    except OSError as exc:
        where = "" if folder == path else f" in {folder}"
        raise OutputError(f"{path}: cannot write{where} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(name)


def check_output(
    path: str | os.PathLike,
    kind: str = "file",
    *,
    suffixes: tuple[str, ...] = (),
    overwrite: bool = False,
    hint: str = "use --overwrite to replace it",
) -> Path:
    """Checks, before any work, that ``path`` can be written as a ``kind``; returns it as a Path.

    The one rule for ganzoo's outputs (``--out``, ``--outdir``, ``--json``, ``--plot``, ...):

    * ``kind="dir"``: a missing path, or an existing **empty** directory, is written; a
      non-empty directory only with ``overwrite`` (and is replaced only once the new one is
      complete); a file there is refused.
    * ``kind="file"``: an existing directory there is refused; the suffix must be one of
      ``suffixes`` (lower case, with the dot; empty: any); an existing file is replaced
      (atomically) only with ``overwrite``.
    * The folder the output goes into (or, when it is missing, its nearest existing parent) must
      take a new file: checked by creating and removing one.

    Args:
        path: the output.
        kind: ``"file"`` or ``"dir"``.
        suffixes: the suffixes the format allows (``kind="file"``).
        overwrite: an existing output may be replaced.
        hint: what to do about an existing output, in its error message.

    Raises:
        OutputError: one line naming ``path`` and the problem.
    """
    from ganzoo.errors import OutputError

    if kind not in ("file", "dir"):
        raise ValueError(f"check_output: kind must be 'file' or 'dir', not {kind!r}")
    path = Path(path)
    exists = os.path.lexists(path)
    if kind == "file":
        if path.is_dir():
            raise OutputError(f"{path}: is a directory; give a file name" + (f" ending in {suffixes[0]}" if suffixes else ""))
        if suffixes and path.suffix.lower() not in suffixes:
            got = f"{path.suffix} is not a format this output is written in" if path.suffix else "no suffix"
            raise OutputError(f"{path}: {got} (use a {' or '.join(suffixes)} name)")
        if exists and not overwrite:
            raise OutputError(f"{path}: already exists ({hint})")
        _probe(_nearest_folder(path), path)
        return path
    if exists:
        if not path.is_dir():
            raise OutputError(f"{path}: exists and is not a directory")
        try:
            with os.scandir(path) as entries:  # closed now: no ResourceWarning shown as a "warning:" line
                empty = next(entries, None) is None
        except OSError as exc:
            raise OutputError(f"{path}: cannot read ({exc.strerror or exc})") from None
        if empty:
            _probe(path, path)  # written in place: only the folder itself needs to take files
            return path
        if not overwrite:
            raise OutputError(f"{path}: already exists and is not empty ({hint})")
        here = Path.cwd().resolve()
        if path.resolve() in (here, *here.parents, Path.home().resolve()):
            raise OutputError(f"{path}: not replaced: it is the current folder, one above it or the home folder; "
                              "choose a new folder")  # fmt: skip
    _probe(_nearest_folder(path), path)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; renames it onto ``path`` only on success.

    The temporary file lives in the same folder, so the final ``os.replace`` is atomic. On any
    exception the temporary file is removed and ``path`` is left as it was. The file gets the
    permissions of a normally created file (``0o666 & ~umask``), not mkstemp's owner-only 0600.

    Raises:
        OutputError: ``path`` cannot be written (a read-only or full disk, a file where a folder
            should be, ...): one line naming it. It is also an ``OSError``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _output_error(path, exc) from None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _writing(path, tmp_path):
            yield tmp_path
        try:
            os.replace(tmp_path, path)
        except OSError as exc:
            raise _output_error(path, exc) from None
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

    An existing **empty** directory is written into (the same rule as :func:`check_output`): the
    temporary directory is made inside it and its entries are moved up on success, so only
    ``path`` itself needs to take files (a mount point, a folder made for the output).

    Args:
        path: the final directory. Must not exist (or be empty) unless ``overwrite`` is set, in
            which case an existing directory is replaced only after the new one is complete.
        overwrite: allow replacing an existing directory.

    Raises:
        OutputError: ``path`` exists and is not empty (without ``overwrite``), or cannot be
            written: one line naming it.
    """
    from ganzoo.errors import GanzooError, OutputError

    path = Path(path)
    try:
        in_place = False
        if path.is_dir():
            with os.scandir(path) as entries:
                in_place = next(entries, None) is None
        home = path if in_place else path.parent
        home.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=home))
    except OSError as exc:
        raise _output_error(path, exc) from None
    try:
        with _writing(path, tmp):
            tmp.chmod(0o777 & ~current_umask())
            yield tmp
        try:
            if in_place:
                others = [entry.name for entry in os.scandir(path) if entry.name != tmp.name]
                if others:
                    raise OutputError(f"{path}: {others[0]} appeared in it while it was written; nothing was written")
                moved: list[Path] = []
                try:
                    for entry in sorted(os.listdir(tmp)):
                        os.replace(tmp / entry, path / entry)
                        moved.append(path / entry)
                except OSError:
                    for target in moved:  # all or nothing: the folder is left empty again
                        shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
                    raise
            elif os.path.lexists(path):
                if not overwrite:
                    raise OutputError(f"{path}: already exists (use --overwrite to replace it)")
                old = path.with_name(f".{path.name}.old-{os.getpid()}")
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        except OSError as exc:
            if isinstance(exc, GanzooError):
                raise
            raise _output_error(path, exc) from None
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
