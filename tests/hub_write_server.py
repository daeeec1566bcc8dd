"""A Hugging Face Hub-compatible write server for tests, on loopback, storing real git repositories.

No installable server implements the Hub's write API (olah serves downloads only), so this one
takes what the real ``huggingface_hub`` client sends for ``HfApi.create_repo``, ``create_branch``
and ``create_commit`` / ``upload_folder`` with LFS files, and answers in the shapes the client
parses. It is written from the Hub's API documentation, the Git LFS batch API specification
(``docs/api/batch.md`` of git-lfs) and the requests the installed client makes
(``huggingface_hub/hf_api.py``, ``_commit_api.py``, ``lfs.py``).

Endpoints (``{repo}`` is ``ORG/NAME``; model repositories only):

* ``HEAD|GET /``: 200 (ganzoo's reachability check asks this).
* ``POST /api/repos/create`` ``{"name", "organization", "visibility"|"private", "type"}``:
  creates the repo with an initial commit holding the usual ``.gitattributes`` of a new Hub repo
  (``*.safetensors``, ``*.bin``, ... ``filter=lfs``); 409 with ``url`` when it exists.
* ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: the model info
  (``sha``, ``siblings`` with ``blobId``/``size``/``lfs`` when ``?blobs=true``, ``cardData``,
  ``private``, dates); 404 ``RepoNotFound`` / ``RevisionNotFound``.
* ``GET /api/models/{repo}/refs``: branches and tags.
* ``POST /api/models/{repo}/branch/{name}`` ``{"startingPoint"?}``: 409 when it exists, 404
  ``RevisionNotFound`` for an unknown starting point; ``DELETE`` removes a branch.
* ``POST /api/validate-yaml``: checks the README front matter parses as a YAML mapping (400 with
  ``errors`` otherwise), as the client asks before committing a README.md.
* ``POST /api/models/{repo}/preupload/{rev}``: ``uploadMode`` per file: ``lfs`` when the path
  matches a ``filter=lfs`` pattern of the revision's ``.gitattributes``, the file is larger than
  10 MiB, or its 512-byte sample holds a NUL byte (binary); else ``regular``. ``oid`` of the file
  already at that path (sha256 for LFS, git blob sha1 otherwise: how the client skips unchanged
  files), ``shouldIgnore`` from the ``gitIgnore`` sent or the revision's ``.gitignore``.
* ``POST /{repo}.git/info/lfs/objects/batch`` (Git LFS batch API, ``basic`` transfer): for
  ``upload``, an ``upload`` action (a signed, expiring ``PUT`` URL on this server, standing in
  for the Hub's pre-signed storage URL: the client sends it no token) and a ``verify`` action;
  objects already stored get no actions. ``download`` is answered too.
* ``PUT /{repo}.git/info/lfs/objects/upload/{oid}?size&expires&signature``: stores the body as
  the LFS object after checking its sha256 and size (400 on a mismatch, 403 on a bad signature).
* ``POST /{repo}.git/info/lfs/objects/verify`` ``{"oid", "size"}``: 200 when stored, else 404.
* ``GET /{repo}.git/info/lfs/objects/{oid}``: the object (what a ``download`` action points to).
* ``POST /api/models/{repo}/commit/{rev}`` (NDJSON: a ``header`` line, then ``file`` (base64),
  ``lfsFile`` (``oid``, ``size``), ``deletedFile``, ``deletedFolder`` lines): one git commit on
  branch ``rev``; answers ``commitOid``/``commitUrl``. 412 when ``parentCommit`` is not the
  branch head any more, 404 ``RevisionNotFound`` for an unknown branch, 400 for a bad payload,
  a binary or >10 MiB file sent inline, or ``create_pr`` (not supported here), 422 for an LFS
  file whose object was never uploaded, 404 ``EntryNotFound`` for deleting a missing file.
* ``.../xet-write-token/...``, ``.../xet-read-token/...``: 501, saying this server takes no Xet
  uploads (set ``HF_HUB_DISABLE_XET=1``).

Authentication: ``Authorization: Bearer TOKEN``. With ``--token`` (repeatable) only those tokens
are valid; without, any non-empty token is. A wrong token is 401 ``Invalid credentials in
Authorization header`` everywhere; writes without a token are 401; reads of a private repo
without a token are 401 ``RepoNotFound`` (the Hub hides private repos).

Storage: each repository is a real, non-bare git repository at ``ROOT/models/ORG/NAME`` (the
layout olah serves from its ``mirrors-path``, and ``ganzoo mirror``'s), written with the ``git``
command's plumbing (``hash-object``, ``update-index``, ``write-tree``, ``commit-tree``,
``update-ref`` with the expected old value). LFS files are committed as Git LFS pointer files
(``version https://git-lfs.github.com/spec/v1`` / ``oid sha256:...`` / ``size N``) and their
content stored at ``.git/lfs/objects/OID[0:2]/OID[2:4]/OID``, as git-lfs stores it (git-lfs
itself is not needed). The work tree and index follow the checked-out branch (pointer files, as
after a clone without the LFS smudge filter), so ``git status`` and ``git fsck`` are clean.
Visibility is ``hubwrite.private`` in the repository's git config.

Run it alone: ``python tests/hub_write_server.py --root DIR --port N [--token T]``; in tests,
``HubWriteServer(root).start()`` serves on a free loopback port in a thread.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import fnmatch
import hashlib
import hmac
import http.server
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

REGULAR_MAX = 10 * 1024 * 1024  # larger files must go through LFS, as on the Hub
LFS_POINTER_VERSION = "https://git-lfs.github.com/spec/v1"
UPLOAD_URL_LIFETIME = 3600  # seconds a signed upload URL is valid
NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
OID_RE = re.compile(r"^[0-9a-f]{64}$")
SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
POINTER_RE = re.compile(rb"^version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize ([0-9]+)\n$")
# The LFS patterns of the .gitattributes in the initial commit of a new model repo on the Hub.
DEFAULT_LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*",
    "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
    "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*",
    "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
)  # fmt: skip
DEFAULT_GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in DEFAULT_LFS_PATTERNS)
# git must not look for git-lfs (not installed, and not needed: pointers are written here).
GIT_NO_LFS = ["-c", "filter.lfs.smudge=", "-c", "filter.lfs.clean=", "-c", "filter.lfs.process=",
              "-c", "filter.lfs.required=false", "-c", "core.autocrlf=false"]  # fmt: skip


class HubError(Exception):
    """An HTTP error answer: status, message, and the Hub's ``X-Error-Code`` where it has one."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


def lfs_pointer(oid: str, size: int) -> bytes:
    """The Git LFS pointer file of an object."""
    return f"version {LFS_POINTER_VERSION}\noid sha256:{oid}\nsize {size}\n".encode()


def parse_pointer(data: bytes) -> tuple[str, int] | None:
    """``(oid, size)`` of a Git LFS pointer file, or None when ``data`` is not one."""
    match = POINTER_RE.match(data) if len(data) < 200 else None
    return (match.group(1).decode(), int(match.group(2))) if match else None


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _pattern_matches(pattern: str, path: str) -> bool:
    """gitattributes/gitignore-style matching: a pattern without '/' matches the file name at any
    depth; one with '/' matches the whole path from the root ('**' spans folders)."""
    pattern = pattern.lstrip("/") if "/" in pattern.rstrip("/") else pattern
    if "/" not in pattern:
        return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern) or any(
            fnmatch.fnmatchcase(part, pattern) for part in path.split("/")[:-1]
        )
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            regex += "/.*"
            i += 3
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.fullmatch(regex, path) is not None


def _lfs_patterns(gitattributes: str) -> list[tuple[str, bool]]:
    """``(pattern, is_lfs)`` lines of a .gitattributes, in order (later lines win)."""
    rules = []
    for line in gitattributes.splitlines():
        parts = line.strip().split()
        if not parts or parts[0].startswith("#"):
            continue
        attrs = parts[1:]
        if "filter=lfs" in attrs:
            rules.append((parts[0], True))
        elif "-filter" in attrs or "!filter" in attrs or any(a.startswith("filter=") for a in attrs):
            rules.append((parts[0], False))
    return rules


def _ignored(gitignore: str, path: str) -> bool:
    ignored = False
    for line in gitignore.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        if pattern.endswith("/"):
            folder = pattern.rstrip("/")
            hit = any(_pattern_matches(folder, "/".join(path.split("/")[: i + 1])) for i in range(path.count("/")))
        else:
            hit = _pattern_matches(pattern, path)
        if hit:
            ignored = not negate
    return ignored


def _repo_id(org: str, name: str) -> str:
    for part in (org, name):
        if not NAME_RE.match(part) or ".." in part:
            raise HubError(404, "Repository not found", "RepoNotFound")
    return f"{org}/{name}"


def _check_path(path: object) -> str:
    if not isinstance(path, str) or not path or path.startswith("/") or path.endswith("/") or "\\" in path:
        raise HubError(400, f"invalid path in repo: {path!r}")
    parts = path.split("/")
    if any(part in ("", ".", "..", ".git") for part in parts) or "\n" in path or "\0" in path:
        raise HubError(400, f"invalid path in repo: {path!r}")
    return path


def _is_binary(data: bytes) -> bool:
    return b"\0" in data[:8000]


# ------------------------------------------------------------------------------------------------
# Storage: one git repository per Hub repo


class Store:
    """The repositories under ``root/models/ORG/NAME``, written with git plumbing."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "models").mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def lock(self, repo_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(repo_id, threading.Lock())

    def path(self, repo_id: str) -> Path:
        return self.root / "models" / repo_id

    def exists(self, repo_id: str) -> bool:
        return (self.path(repo_id) / ".git" / "HEAD").is_file()

    def git(self, repo_id_or_path: str | Path, *args: str, data: bytes | None = None,
            env: dict | None = None, check: bool = True) -> bytes:  # fmt: skip
        cwd = repo_id_or_path if isinstance(repo_id_or_path, Path) else self.path(repo_id_or_path)
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        full_env.update({"GIT_AUTHOR_NAME": "hub write server", "GIT_AUTHOR_EMAIL": "hub@localhost",
                         "GIT_COMMITTER_NAME": "hub write server", "GIT_COMMITTER_EMAIL": "hub@localhost",
                         "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.root)})  # fmt: skip
        full_env.update(env or {})
        run = subprocess.run(["git", *GIT_NO_LFS, *args], cwd=cwd, input=data, env=full_env, capture_output=True)
        if check and run.returncode != 0:
            raise HubError(500, f"git {args[0]} failed: {run.stderr.decode(errors='replace').strip()}")
        return run.stdout

    # Reading

    def is_private(self, repo_id: str) -> bool:
        out = self.git(repo_id, "config", "--get", "hubwrite.private", check=False)
        return out.strip() == b"true"

    def branches(self, repo_id: str) -> dict[str, str]:
        out = self.git(repo_id, "for-each-ref", "--format=%(refname)%00%(objectname)", "refs/heads", "refs/tags")
        refs = {}
        for line in out.decode().splitlines():
            name, sha = line.split("\0")
            refs[name] = sha
        return refs

    def resolve(self, repo_id: str, revision: str) -> str | None:
        """The commit a branch, tag or commit sha names, or None."""
        refs = self.branches(repo_id)
        for ref in (f"refs/heads/{revision}", f"refs/tags/{revision}"):
            if ref in refs:
                return self.git(repo_id, "rev-parse", "--verify", "--quiet", f"{refs[ref]}^{{commit}}").decode().strip()
        if re.fullmatch(r"[0-9a-f]{7,40}", revision):
            out = self.git(repo_id, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", check=False).strip()
            return out.decode() if out else None
        return None

    def files(self, repo_id: str, commit: str) -> dict[str, dict]:
        """path -> ``{"blob", "size", "lfs": (oid, size) | None}`` of every file at ``commit``."""
        out = self.git(repo_id, "ls-tree", "-r", "-l", "-z", "--full-tree", commit)
        files = {}
        small = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, path = record.split(b"\t", 1)
            _mode, kind, blob, size = meta.split()
            if kind != b"blob":
                continue
            files[path.decode()] = {"blob": blob.decode(), "size": int(size), "lfs": None}
            if int(size) < 200:
                small.append(path.decode())
        if small:  # read the small blobs in one batch: they may be LFS pointers
            request = "".join(f"{files[p]['blob']}\n" for p in small).encode()
            out = self.git(repo_id, "cat-file", "--batch", data=request)
            pos = 0
            for p in small:
                header_end = out.index(b"\n", pos)
                size = int(out[pos:header_end].split()[2])
                content = out[header_end + 1:header_end + 1 + size]
                pos = header_end + 1 + size + 1
                files[p]["lfs"] = parse_pointer(content)
        return files

    def read(self, repo_id: str, commit: str, path: str) -> bytes | None:
        out = subprocess.run(["git", "cat-file", "blob", f"{commit}:{path}"], cwd=self.path(repo_id),
                             capture_output=True)  # fmt: skip
        return out.stdout if out.returncode == 0 else None

    def commit_time(self, repo_id: str, commit: str) -> int:
        return int(self.git(repo_id, "show", "-s", "--format=%ct", commit).decode().strip())

    def first_commit_time(self, repo_id: str, commit: str) -> int:
        roots = self.git(repo_id, "rev-list", "--max-parents=0", commit).decode().split()
        return min(self.commit_time(repo_id, r) for r in roots)

    def lfs_object(self, repo_id: str, oid: str) -> Path:
        return self.path(repo_id) / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid

    def has_object(self, repo_id: str, oid: str, size: int | None = None) -> bool:
        path = self.lfs_object(repo_id, oid)
        return path.is_file() and (size is None or path.stat().st_size == size)

    # Writing

    def create(self, repo_id: str, private: bool) -> None:
        """A new repository with one commit holding the default ``.gitattributes``."""
        target = self.path(repo_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.creating-", dir=target.parent))
        try:
            self.git(tmp, "init", "-q", "-b", "main")
            self.git(tmp, "config", "hubwrite.private", "true" if private else "false")
            self.git(tmp, "config", "gc.auto", "0")  # no background gc while the server writes
            blob = self.git(tmp, "hash-object", "-w", "--stdin", data=DEFAULT_GITATTRIBUTES.encode()).decode().strip()
            tree = self.git(tmp, "mktree", data=f"100644 blob {blob}\t.gitattributes\n".encode()).decode().strip()
            commit = self.git(tmp, "commit-tree", tree, "-m", "initial commit").decode().strip()
            self.git(tmp, "update-ref", "refs/heads/main", commit, "0" * 40)
            self.git(tmp, "read-tree", "--reset", "-u", "HEAD")
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def sync_worktree(self, repo_id: str, branch: str) -> None:
        """Keeps the index and work tree on the checked-out branch (the repo is not bare)."""
        head = self.git(repo_id, "symbolic-ref", "-q", "HEAD", check=False).decode().strip()
        if head == f"refs/heads/{branch}":
            self.git(repo_id, "read-tree", "--reset", "-u", "HEAD")

    def store_object(self, repo_id: str, oid: str, size: int, stream, length: int | None) -> None:
        """Stores an LFS object from ``stream`` (``length`` bytes, or chunked when None) after
        checking its sha256 and size."""
        objects = self.path(repo_id) / ".git" / "lfs"
        (objects / "tmp").mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        received = 0
        fd, tmp_name = tempfile.mkstemp(dir=objects / "tmp", prefix=oid[:16] + "-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in _body_chunks(stream, length):
                    digest.update(chunk)
                    received += len(chunk)
                    out.write(chunk)
            if received != size:
                raise HubError(400, f"object {oid}: received {received} bytes, expected {size}")
            if digest.hexdigest() != oid:
                raise HubError(400, f"object {oid}: the content's sha256 is {digest.hexdigest()}")
            final = self.lfs_object(repo_id, oid)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp_name, 0o644)  # readable by the server serving it (olah), as git-lfs leaves them
            os.replace(tmp_name, final)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)


def _exactly(stream, length: int, chunk_size: int):
    """``length`` bytes of ``stream``, in chunks of at most ``chunk_size``."""
    left = length
    while left > 0:
        chunk = stream.read(min(chunk_size, left))
        if not chunk:
            raise HubError(400, "request body ended early")
        left -= len(chunk)
        yield chunk


def _body_chunks(stream, length: int | None, chunk_size: int = 1 << 20):
    """The request body: ``length`` bytes, or HTTP/1.1 chunked transfer coding when None."""
    if length is not None:
        yield from _exactly(stream, length, chunk_size)
        return
    while True:
        line = stream.readline(1024)
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise HubError(400, "bad chunked encoding") from None
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return
        yield from _exactly(stream, size, chunk_size)
        stream.readline(1024)  # the CRLF after each chunk


# ------------------------------------------------------------------------------------------------
# HTTP


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries a Content-Length
    server_version = "ganzoo-test-hub"

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def hub(self) -> HubWriteServer:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format, *args):
        if self.hub.verbose:
            super().log_message(format, *args)

    def _body(self) -> bytes:
        if getattr(self, "_body_read", False):
            return self._body_bytes
        length = self.headers.get("Content-Length")
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        data = b"".join(_body_chunks(self.rfile, None if chunked else int(length or 0)))
        self._body_read, self._body_bytes = True, data
        return data

    def _json_body(self) -> dict:
        try:
            value = json.loads(self._body() or b"{}")
        except ValueError:
            raise HubError(400, "the request body is not JSON") from None
        if not isinstance(value, dict):
            raise HubError(400, "the request body is not a JSON object")
        return value

    def _send(self, status: int, payload, headers: dict | None = None, content_type: str = "application/json") -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _base(self) -> str:
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        return f"http://{host}"

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        if not auth:
            return None
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or not self.hub.accepts(token):
            raise HubError(401, "Invalid credentials in Authorization header")
        return token

    def _require_token(self) -> str:
        token = self._token()
        if token is None:
            raise HubError(401, "You must be authenticated to write: send a token (HF_TOKEN)")
        return token

    def _repo(self, org: str, name: str, write: bool) -> str:
        """The repo id after the access checks: a write needs a token, a private repo is hidden
        (401 RepoNotFound) from requests without one."""
        repo_id = _repo_id(org, name)
        token = self._require_token() if write else self._token()
        if not self.hub.store.exists(repo_id):
            raise HubError(404, "Repository not found", "RepoNotFound")
        if token is None and self.hub.store.is_private(repo_id):
            raise HubError(401, "Repository not found", "RepoNotFound")
        return repo_id

    def _dispatch(self) -> None:
        self._body_read, self._body_bytes = False, b""  # one handler serves a whole keep-alive connection
        split = urlsplit(self.path)
        self._query = parse_qs(split.query)
        path = split.path
        self.hub.requests.append((self.command, path))
        try:
            for method, pattern, handler in _ROUTES:
                if method == self.command or (method == "GET" and self.command == "HEAD"):
                    match = pattern.fullmatch(path)
                    if match:
                        groups = [unquote(g) if g is not None else None for g in match.groups()]
                        handler(self, *groups)
                        break
            else:
                raise HubError(404, f"{self.command} {path}: not an endpoint of this server")
        except HubError as exc:
            headers = {"X-Error-Message": exc.message}
            if exc.code:
                headers["X-Error-Code"] = exc.code
            if not getattr(self, "_body_read", False) and self.command in ("POST", "PUT"):
                try:  # read what was sent, so the connection stays usable
                    self._body()
                except HubError:
                    self.close_connection = True
            self._send(exc.status, {"error": exc.message, **exc.extra}, headers)
        except Exception as exc:  # noqa: BLE001 - a server bug is a 500, never a hang
            self.close_connection = True
            self._send(500, {"error": f"{type(exc).__name__}: {exc}"}, {"X-Error-Message": str(exc)[:200]})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch

    # -- endpoints -----------------------------------------------------------------------------

    def root(self) -> None:
        self._send(200, {"server": "ganzoo test Hub write server"})

    def whoami(self) -> None:
        token = self._token()
        if token is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        self._send(200, {"type": "user", "name": "hub-write-server-user", "orgs": [],
                         "auth": {"type": "access_token", "accessToken": {"role": "write"}}})  # fmt: skip

    def create_repo(self) -> None:
        self._require_token()
        body = self._json_body()
        name, org = body.get("name"), body.get("organization")
        kind = body.get("type") or "model"
        if kind != "model":
            raise HubError(400, f"this server holds model repositories only, not {kind!r}")
        if not isinstance(org, str) or not org:
            raise HubError(400, "give the repo as org/name (this server has no user namespaces)")
        for part in (org, name):
            if not isinstance(part, str) or not NAME_RE.match(part) or part.endswith(".git") or ".." in part:
                raise HubError(400, f"invalid repo name {org}/{name}")
        visibility = body.get("visibility")
        private = visibility == "private" if visibility is not None else bool(body.get("private"))
        repo_id = f"{org}/{name}"
        url = f"{self._base()}/{repo_id}"
        with self.hub.store.lock(repo_id):
            if self.hub.store.exists(repo_id):
                raise HubError(409, "You already created this model repo", extra={"url": url})
            self.hub.store.create(repo_id, private)
        self._send(200, {"url": url, "name": repo_id, "id": repo_id})

    def model_info(self, org: str, name: str, revision: str | None = None) -> None:
        repo_id = self._repo(org, name, write=False)
        store = self.hub.store
        commit = store.resolve(repo_id, revision or "main")
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision or 'main'}", "RevisionNotFound")
        files = store.files(repo_id, commit)
        card: dict | None = None
        readme = store.read(repo_id, commit, "README.md") if "README.md" in files else None
        if readme is not None:
            card = _front_matter(readme.decode("utf-8", errors="replace"))[0]
        blobs = self._query.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for path, meta in sorted(files.items()):
            sibling: dict = {"rfilename": path}
            if blobs:
                sibling.update(blobId=meta["blob"], size=meta["lfs"][1] if meta["lfs"] else meta["size"])
                if meta["lfs"]:
                    sibling["lfs"] = {"sha256": meta["lfs"][0], "size": meta["lfs"][1], "pointerSize": meta["size"]}
            siblings.append(sibling)
        card = card if isinstance(card, dict) else None
        tags = [str(t) for t in (card or {}).get("tags") or [] if isinstance(t, (str, int))]
        info = {
            "_id": hashlib.sha256(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
            "author": org, "sha": commit, "lastModified": _iso(store.commit_time(repo_id, commit)),
            "createdAt": _iso(store.first_commit_time(repo_id, commit)), "private": store.is_private(repo_id),
            "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": tags,
            "library_name": (card or {}).get("library_name"), "pipeline_tag": (card or {}).get("pipeline_tag"),
            "siblings": siblings,
        }  # fmt: skip
        if card is not None:
            info["cardData"] = card
        self._send(200, info)

    def refs(self, org: str, name: str) -> None:
        repo_id = self._repo(org, name, write=False)
        refs = self.hub.store.branches(repo_id)
        out: dict = {"branches": [], "converts": [], "tags": []}
        for ref, sha in sorted(refs.items()):
            kind = "branches" if ref.startswith("refs/heads/") else "tags"
            out[kind].append({"name": ref.split("/", 2)[2], "ref": ref, "targetCommit": sha})
        self._send(200, out)

    def branch(self, org: str, name: str, branch: str) -> None:
        repo_id = self._repo(org, name, write=True)
        store = self.hub.store
        if not branch or subprocess.run(["git", "check-ref-format", f"refs/heads/{branch}"]).returncode != 0:
            raise HubError(400, f"invalid branch name {branch!r}")
        body = self._json_body()
        with store.lock(repo_id):
            if self.command == "DELETE":
                if f"refs/heads/{branch}" not in store.branches(repo_id):
                    raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
                if branch == "main":
                    raise HubError(403, "the main branch cannot be deleted")
                store.git(repo_id, "update-ref", "-d", f"refs/heads/{branch}")
                self._send(200, {})
                return
            if f"refs/heads/{branch}" in store.branches(repo_id):
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")
            start = body.get("startingPoint") or "main"
            commit = store.resolve(repo_id, str(start))
            if commit is None:
                raise HubError(404, f"Invalid rev id: {start}", "RevisionNotFound")
            store.git(repo_id, "update-ref", f"refs/heads/{branch}", commit, "0" * 40)
        self._send(200, {})

    def validate_yaml(self) -> None:
        body = self._json_body()
        content = body.get("content")
        if not isinstance(content, str):
            raise HubError(400, "content: a string is required")
        metadata, error = _front_matter(content)
        if error:
            self._send(400, {"errors": [{"message": error}], "warnings": []}, {"X-Error-Message": error})
            return
        warnings = [] if metadata else [{"message": "empty or missing yaml metadata in repo card"}]
        self._send(200, {"errors": [], "warnings": warnings})

    def preupload(self, org: str, name: str, revision: str) -> None:
        repo_id = self._repo(org, name, write=True)
        store = self.hub.store
        if self._query.get("create_pr"):
            raise HubError(400, "pull requests are not supported by this server")
        commit = store.resolve(repo_id, revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        body = self._json_body()
        entries = body.get("files")
        if not isinstance(entries, list):
            raise HubError(400, "files: a list is required")
        existing = store.files(repo_id, commit)
        attributes = store.read(repo_id, commit, ".gitattributes") or b""
        rules = _lfs_patterns(attributes.decode("utf-8", errors="replace"))
        gitignore = body.get("gitIgnore")
        if not isinstance(gitignore, str):
            gitignore = (store.read(repo_id, commit, ".gitignore") or b"").decode("utf-8", errors="replace")
        out = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise HubError(400, "files: each entry is an object")
            path = _check_path(entry.get("path"))
            size = entry.get("size")
            try:
                sample = base64.b64decode(entry.get("sample") or "", validate=True)
            except (binascii.Error, ValueError):
                raise HubError(400, f"{path}: sample is not base64") from None
            if not isinstance(size, int) or size < 0:
                raise HubError(400, f"{path}: size must be a non-negative integer")
            lfs = False
            for pattern, is_lfs in rules:
                if _pattern_matches(pattern, path):
                    lfs = is_lfs
            lfs = lfs or size > REGULAR_MAX or _is_binary(sample)
            item = {"path": path, "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": _ignored(gitignore, path)}  # fmt: skip
            if path in existing:
                meta = existing[path]
                item["oid"] = meta["lfs"][0] if meta["lfs"] else meta["blob"]
            out.append(item)
        self._send(200, {"files": out, "commitOid": commit})

    def lfs_batch(self, org: str, name: str) -> None:
        body = self._json_body()
        operation = body.get("operation")
        repo_id = self._repo(org, name, write=operation == "upload")
        if operation not in ("upload", "download"):
            raise HubError(422, f"operation must be upload or download, not {operation!r}")
        if body.get("hash_algo", "sha256") != "sha256":
            raise HubError(409, "only the sha256 hash algorithm is supported")
        transfers = body.get("transfers") or ["basic"]
        if "basic" not in transfers:
            raise HubError(422, "this server offers the basic transfer only")
        objects = body.get("objects")
        if not isinstance(objects, list):
            raise HubError(422, "objects: a list is required")
        base = f"{self._base()}/{quote(repo_id)}.git/info/lfs/objects"
        out = []
        for obj in objects:
            oid = obj.get("oid") if isinstance(obj, dict) else None
            size = obj.get("size") if isinstance(obj, dict) else None
            item = {"oid": oid if isinstance(oid, str) else "", "size": size if isinstance(size, int) else 0}
            if not isinstance(oid, str) or not OID_RE.match(oid) or not isinstance(size, int) or size < 0:
                out.append({**item, "error": {"code": 422, "message": "invalid oid or size"}})
                continue
            stored = self.hub.store.has_object(repo_id, oid)
            if operation == "download":
                if stored:
                    item.update(authenticated=True, actions={"download": {"href": f"{base}/{oid}", "expires_in": UPLOAD_URL_LIFETIME}})
                else:
                    item["error"] = {"code": 404, "message": "object does not exist"}
            elif not self.hub.store.has_object(repo_id, oid, size):
                expires = int(time.time()) + UPLOAD_URL_LIFETIME
                signature = self.hub.sign(repo_id, oid, size, expires)
                item.update(authenticated=True, actions={
                    "upload": {"href": f"{base}/upload/{oid}?size={size}&expires={expires}&signature={signature}",
                               "expires_in": UPLOAD_URL_LIFETIME},
                    "verify": {"href": f"{base}/verify", "expires_in": UPLOAD_URL_LIFETIME},
                })  # fmt: skip
            out.append(item)
        self._send(200, {"transfer": "basic", "objects": out, "hash_algo": "sha256"},
                   content_type="application/vnd.git-lfs+json")  # fmt: skip

    def lfs_upload(self, org: str, name: str, oid: str) -> None:
        repo_id = _repo_id(org, name)
        try:
            size = int(self._query["size"][0])
            expires = int(self._query["expires"][0])
            signature = self._query["signature"][0]
        except (KeyError, ValueError, IndexError):
            raise HubError(403, "unsigned upload URL: ask the LFS batch endpoint for one") from None
        if not hmac.compare_digest(signature, self.hub.sign(repo_id, oid, size, expires)) or expires < time.time():
            raise HubError(403, "invalid or expired upload signature")
        if not self.hub.store.exists(repo_id):
            raise HubError(404, "Repository not found", "RepoNotFound")
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        length = None if chunked else int(self.headers.get("Content-Length") or 0)
        self._body_read, self._body_bytes = True, b""  # the body goes to the object store
        try:
            self.hub.store.store_object(repo_id, oid, size, self.rfile, length)
        except HubError:
            self.close_connection = True  # the rest of the body was not read
            raise
        self._send(200, {}, {"ETag": f'"{oid}"'})

    def lfs_verify(self, org: str, name: str) -> None:
        repo_id = self._repo(org, name, write=True)
        body = self._json_body()
        oid, size = body.get("oid"), body.get("size")
        if not isinstance(oid, str) or not OID_RE.match(oid) or not isinstance(size, int):
            raise HubError(422, "verify: oid and size are required")
        if not self.hub.store.has_object(repo_id, oid, size):
            raise HubError(404, f"object {oid} ({size} bytes) was not uploaded")
        self._send(200, {"oid": oid, "size": size})

    def lfs_download(self, org: str, name: str, oid: str) -> None:
        repo_id = self._repo(org, name, write=False)
        if not OID_RE.match(oid) or not self.hub.store.has_object(repo_id, oid):
            raise HubError(404, "object does not exist")
        self._send(200, self.hub.store.lfs_object(repo_id, oid).read_bytes(), content_type="application/octet-stream")

    def xet(self, *_args) -> None:
        raise HubError(501, "this server takes no Xet uploads: set HF_HUB_DISABLE_XET=1 so the client uses Git LFS")

    def commit(self, org: str, name: str, revision: str) -> None:
        repo_id = self._repo(org, name, write=True)
        if self._query.get("create_pr"):
            raise HubError(400, "pull requests are not supported by this server")
        header, operations = _parse_ndjson(self._body())
        store = self.hub.store
        with store.lock(repo_id):
            if f"refs/heads/{revision}" not in store.branches(repo_id):
                if store.resolve(repo_id, revision) is not None:
                    raise HubError(400, f"Invalid rev id: {revision} is not a branch; commits go to branches")
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            parent = store.resolve(repo_id, revision)
            expected = header.get("parentCommit")
            if expected is not None and not (isinstance(expected, str) and len(expected) >= 7 and parent.startswith(expected)):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            commit = self._write_commit(repo_id, parent, header, operations)
            store.git(repo_id, "update-ref", f"refs/heads/{revision}", commit, parent)
            store.sync_worktree(repo_id, revision)
        url = f"{self._base()}/{repo_id}/commit/{commit}"
        self._send(200, {"success": True, "commitOid": commit, "commitUrl": url, "hookOutput": ""})

    def _write_commit(self, repo_id: str, parent: str, header: dict, operations: list[tuple[str, dict]]) -> str:
        store = self.hub.store
        existing = store.files(repo_id, parent)
        with tempfile.TemporaryDirectory(prefix="hub-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            store.git(repo_id, "read-tree", parent, env=env)
            lines = []
            present = set(existing)
            for key, value in operations:
                if key in ("deletedFile", "deletedFolder"):
                    path = _check_path(value.get("path", "").rstrip("/") if isinstance(value.get("path"), str) else None)
                    gone = [p for p in present if p == path] if key == "deletedFile" else \
                        [p for p in present if p.startswith(path + "/")]  # fmt: skip
                    if not gone:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                    for p in gone:
                        lines.append(f"0 {'0' * 40}\t{p}")
                        present.discard(p)
                    continue
                path = _check_path(value.get("path"))
                if key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise HubError(400, f"{path}: only base64 content is supported")
                    try:
                        data = base64.b64decode(value.get("content") or "", validate=True)
                    except (binascii.Error, ValueError):
                        raise HubError(400, f"{path}: content is not base64") from None
                    if len(data) > REGULAR_MAX or _is_binary(data):
                        raise HubError(400, f"{path}: binary or larger than 10 MiB: upload it through Git LFS (preupload says so)")
                else:  # lfsFile
                    oid, size = value.get("oid"), value.get("size")
                    if value.get("algo", "sha256") != "sha256" or not isinstance(oid, str) or not OID_RE.match(oid):
                        raise HubError(400, f"{path}: an lfsFile needs a sha256 oid")
                    if not store.has_object(repo_id, oid, size if isinstance(size, int) else None):
                        raise HubError(422, f"{path}: LFS object {oid} was never uploaded (or its size differs)")
                    size = store.lfs_object(repo_id, oid).stat().st_size
                    data = lfs_pointer(oid, size)
                blob = store.git(repo_id, "hash-object", "-w", "--stdin", data=data).decode().strip()
                # A file replacing a folder, or a folder a file: drop what is in the way first.
                for p in [p for p in present if p.startswith(path + "/") or path.startswith(p + "/")]:
                    lines.append(f"0 {'0' * 40}\t{p}")
                    present.discard(p)
                lines.append(f"100644 {blob}\t{path}")
                present.add(path)
            if lines:
                store.git(repo_id, "update-index", "--index-info", data=("\n".join(lines) + "\n").encode(), env=env)
            tree = store.git(repo_id, "write-tree", env=env).decode().strip()
        message = str(header.get("summary") or "").strip()
        description = str(header.get("description") or "").strip()
        args = ["commit-tree", tree, "-p", parent, "-m", message]
        if description:
            args += ["-m", description]
        return store.git(repo_id, *args).decode().strip()


def _front_matter(text: str) -> tuple[dict | None, str | None]:
    """``(metadata, error)`` of a README's YAML front matter (None, None when there is none)."""
    import yaml

    match = re.match(r"^\s*---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", text, flags=re.DOTALL)
    if not match:
        return None, None
    try:
        value = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        return None, f"invalid YAML in the metadata: {str(exc).splitlines()[0]}"
    if value is None:
        return None, None
    if not isinstance(value, dict):
        return None, "the metadata must be a YAML mapping"
    return value, None


def _parse_ndjson(body: bytes) -> tuple[dict, list[tuple[str, dict]]]:
    lines = [line for line in body.split(b"\n") if line.strip()]
    items = []
    for number, line in enumerate(lines, 1):
        try:
            item = json.loads(line)
        except ValueError:
            raise HubError(400, f"commit payload line {number} is not JSON") from None
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            raise HubError(400, f"commit payload line {number}: expected {{'key', 'value'}}")
        items.append((item.get("key"), item["value"]))
    if not items or items[0][0] != "header":
        raise HubError(400, "the commit payload must start with a header line")
    header = items[0][1]
    if not str(header.get("summary") or "").strip():
        raise HubError(400, "the commit summary (message) is empty")
    operations = items[1:]
    for key, _value in operations:
        if key not in ("file", "lfsFile", "deletedFile", "deletedFolder"):
            raise HubError(400, f"unknown commit operation {key!r}")
    return header, operations


_R = r"([^/]+)/([^/]+)"  # ORG/NAME
_ROUTES = [
    ("GET", re.compile(r"/"), _Handler.root),
    ("GET", re.compile(r"/api/whoami-v2"), _Handler.whoami),
    ("POST", re.compile(r"/api/repos/create"), _Handler.create_repo),
    ("POST", re.compile(r"/api/validate-yaml"), _Handler.validate_yaml),
    ("GET", re.compile(rf"/api/models/{_R}"), _Handler.model_info),
    ("GET", re.compile(rf"/api/models/{_R}/revision/(.+)"), _Handler.model_info),
    ("GET", re.compile(rf"/api/models/{_R}/refs"), _Handler.refs),
    ("POST", re.compile(rf"/api/models/{_R}/branch/(.+)"), _Handler.branch),
    ("DELETE", re.compile(rf"/api/models/{_R}/branch/(.+)"), _Handler.branch),
    ("POST", re.compile(rf"/api/models/{_R}/preupload/(.+)"), _Handler.preupload),
    ("POST", re.compile(rf"/api/models/{_R}/commit/(.+)"), _Handler.commit),
    ("GET", re.compile(rf"/api/models/{_R}/xet-(?:write|read)-token/(.+)"), _Handler.xet),
    ("POST", re.compile(rf"/{_R}\.git/info/lfs/objects/batch"), _Handler.lfs_batch),
    ("POST", re.compile(rf"/{_R}\.git/info/lfs/objects/verify"), _Handler.lfs_verify),
    ("PUT", re.compile(rf"/{_R}\.git/info/lfs/objects/upload/([0-9a-f]{{64}})"), _Handler.lfs_upload),
    ("GET", re.compile(rf"/{_R}\.git/info/lfs/objects/([0-9a-f]{{64}})"), _Handler.lfs_download),
]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class HubWriteServer:
    """The write server on ``host:port`` (port 0: a free one), storing repos under ``root``."""

    def __init__(self, root: str | os.PathLike, port: int = 0, host: str = "127.0.0.1",
                 tokens: list[str] | None = None, verbose: bool = False):  # fmt: skip
        self.store = Store(Path(root))
        self.tokens = set(tokens or ())
        self.verbose = verbose
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self._secret = secrets.token_bytes(32)
        self.httpd = _Server((host, port), _Handler)
        self.httpd.hub = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="hub-write-server")

    def accepts(self, token: str) -> bool:
        return token in self.tokens if self.tokens else bool(token)

    def sign(self, repo_id: str, oid: str, size: int, expires: int) -> str:
        message = f"{repo_id}\n{oid}\n{size}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def repo_path(self, repo_id: str) -> Path:
        return self.store.path(repo_id)

    def committed_files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """What the repository holds at ``revision``: path -> content (LFS pointers resolved)."""
        commit = self.store.resolve(repo_id, revision)
        if commit is None:
            raise KeyError(f"{repo_id}@{revision}")
        out = {}
        for path, meta in self.store.files(repo_id, commit).items():
            if meta["lfs"]:
                out[path] = self.store.lfs_object(repo_id, meta["lfs"][0]).read_bytes()
            else:
                out[path] = self.store.read(repo_id, commit, path) or b""
        return out

    def start(self) -> HubWriteServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="repos go to ROOT/models/ORG/NAME (olah's mirrors-path)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token", action="append", default=[], help="an accepted token (default: any non-empty one)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    server = HubWriteServer(args.root, args.port, args.host, args.token, args.verbose)
    print(f"Hub write server on {server.url}, repos under {server.store.root / 'models'}; Ctrl-C stops it", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
