"""Servers on loopback for the Hub tests: a real olah Hub mirror, and a plain file server.

``OlahServer`` runs the ``olah`` package (PyPI) as a subprocess in offline mode: it serves the git
repositories under ``mirrors/models/ORG/NAME`` to the real ``huggingface_hub`` client, exactly
as a self-hosted mirror would. ``FileServer`` stands in for an upstream release site (e.g. the
NVIDIA CDN): HTTP with ``Range`` support, so resumable downloads can be tested. Both listen on
127.0.0.1 only and stop when the test module ends.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class OlahServer:
    """An ``olah`` Hub mirror on a free loopback port, offline, serving ``root/mirrors``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.mirrors = self.root / "mirrors"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log = self.root / "olah.log"

    def start(self, timeout: float = 60.0) -> "OlahServer":
        try:
            import olah.server  # noqa: F401  (only checks that it is installed)
        except ImportError:
            raise RuntimeError("olah is not installed: pip install -e '.[dev]' installs it") from None
        (self.mirrors / "models").mkdir(parents=True, exist_ok=True)
        (self.root / "repos").mkdir(exist_ok=True)
        config = self.root / "olah.toml"
        # Written by hand: the file is olah's own configuration, three plain keys.
        config.write_text(
            "[basic]\n"
            'host = "127.0.0.1"\n'
            f"port = {self.port}\n"
            f'mirrors-path = ["{self.mirrors}"]\n'
            f'repos-path = "{self.root / "repos"}"\n'
            "[accessibility]\n"
            "offline = true\n",
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        self.process = subprocess.Popen(
            # olah's console script, run through this interpreter so no PATH lookup is needed.
            [sys.executable, "-c", "import sys; from olah.server import cli; sys.argv[0] = 'olah-cli'; sys.exit(cli())",
             "-c", str(config)],
            cwd=self.root,
            stdout=open(self.log, "wb"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # so stop() can end olah and its workers together
        )
        try:
            _wait_for_port(self.port, timeout, self.process)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}; olah log:\n{self.log.read_text(errors='replace')[-2000:]}") from None
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from ``server.files`` (name -> bytes) with ``Range: bytes=N-`` support."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        name = self.path.split("?")[0].lstrip("/")
        data = self.server.files.get(name)  # type: ignore[attr-defined]
        self.server.requests.append((self.path, self.headers.get("Range")))  # type: ignore[attr-defined]
        if data is None:
            self.send_error(404, "not found")
            return
        start = 0
        range_header = self.headers.get("Range")
        if range_header and range_header.startswith("bytes=") and range_header.endswith("-"):
            start = int(range_header[len("bytes="):-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output clean
        pass


class FileServer:
    """A threaded HTTP server on a free loopback port serving in-memory files."""

    def __init__(self, files: dict[str, bytes]):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
        self.httpd.files = dict(files)  # type: ignore[attr-defined]
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return self.httpd.requests  # type: ignore[attr-defined]

    def start(self) -> "FileServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":  # pragma: no cover - manual use: python tests/olah_server.py ROOT
    server = OlahServer(Path(sys.argv[1])).start()
    print(f"olah on {server.url}, mirrors at {server.mirrors}; Ctrl-C stops it")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()
