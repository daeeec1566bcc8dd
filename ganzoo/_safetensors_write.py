"""Writing safetensors files with the same bytes for the same content.

``safetensors`` (Rust) creates its files owner-only (0600), and keeps the metadata in a hash map whose iteration order is random per
process and per call, so ``save_file(t, p, metadata={"format": "pt", "role": "G"})`` writes the
two keys in either order: equal tensors, different file, different sha256. Every safetensors
file ganzoo writes goes through :func:`save_file` here, which rewrites the header with the
metadata keys sorted (the tensor entries and the data are left exactly as written).
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any, Mapping

from ganzoo._io import current_umask

_PAD = 8  # safetensors pads its header with spaces to a multiple of 8 bytes


def save_file(tensors: Mapping[str, Any], path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """``safetensors.{torch,numpy}.save_file`` (by the tensors' type) with a canonical header."""
    if any(type(t).__module__.startswith("torch") for t in tensors.values()):
        from safetensors.torch import save_file as write
    else:
        from safetensors.numpy import save_file as write
    write(dict(tensors), os.fspath(path), metadata=dict(metadata) if metadata is not None else None)
    if metadata and len(metadata) > 1:
        canonicalize_header(path)
    # The writer creates its file owner-only (0600); give it a normal file's permissions, as every
    # other file ganzoo writes has (snapshots and checkpoints alike).
    os.chmod(path, 0o666 & ~current_umask())


def canonical_header(header: bytes) -> bytes:
    """The header (its JSON, with safetensors' space padding) with ``__metadata__`` keys sorted."""
    data = json.loads(header.decode("utf-8"))
    if isinstance(data.get("__metadata__"), dict):
        data["__metadata__"] = dict(sorted(data["__metadata__"].items()))
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return text + b" " * (-len(text) % _PAD)


def canonicalize_header(path: str | os.PathLike) -> None:
    """Rewrites a safetensors file's header in canonical form (in place when its size is kept)."""
    with open(path, "r+b") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = f.read(size)
        new = canonical_header(header)
        if new == header:
            return
        if len(new) == size:
            f.seek(8)
            f.write(new)
            return
        body = f.read()  # a header of another length (never seen: serde_json and json agree)
        f.seek(0)
        f.write(struct.pack("<Q", len(new)) + new + body)
        f.truncate()
