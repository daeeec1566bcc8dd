"""The Hub layer's settings, read from the environment at call time (never at import).

The one module of :mod:`ganzoo.hub` that reads ``os.environ``: ``HF_ENDPOINT``,
``HF_HUB_OFFLINE``, ``HF_HUB_ETAG_TIMEOUT``, ``HF_HUB_CACHE``/``HF_HOME``/``XDG_CACHE_HOME``,
``GANZOO_CACHE`` (through :func:`ganzoo._io.cache_home`), ``HF_HUB_DISABLE_XET`` and
``SOURCE_DATE_EPOCH``. Reading them on every call lets them change within one process.
"""

from __future__ import annotations

import os
from pathlib import Path

from ganzoo._io import cache_home

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT = 2.0  # seconds ganzoo waits for the endpoint's answer, unless HF_HUB_ETAG_TIMEOUT is set
_TRUE = {"1", "on", "yes", "true"}


def hub_endpoint() -> str:
    """The Hub endpoint: ``HF_ENDPOINT`` (read now, not at import), else huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set: only the local caches are used."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def probe_timeout() -> float:
    """Seconds to wait for the endpoint's answer: ``HF_HUB_ETAG_TIMEOUT`` when it is a positive
    number, else :data:`PROBE_TIMEOUT`."""
    try:
        value = float(os.environ.get("HF_HUB_ETAG_TIMEOUT", ""))
    except ValueError:
        return PROBE_TIMEOUT
    return value if value > 0 else PROBE_TIMEOUT


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


def xet_switch_set() -> bool:
    """True when ``HF_HUB_DISABLE_XET`` is in the environment (set to any value): huggingface_hub
    decides between Xet and Git LFS uploads by it, ganzoo does not override it."""
    return "HF_HUB_DISABLE_XET" in os.environ


def git_environment(**identity: str) -> dict[str, str]:
    """The environment for a git command that commits: this process's, plus ``identity``
    (``GIT_AUTHOR_NAME=...``), plus a fixed date when ``SOURCE_DATE_EPOCH`` is set (a number),
    so the commits are reproducible."""
    env = {**os.environ, **identity}
    stamp = os.environ.get("SOURCE_DATE_EPOCH")
    if stamp and stamp.isdigit():
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{stamp} +0000"
    return env
