"""The legacy (non-zip, torch < 1.6) ``torch.save`` format, read by the restricted unpickler.

A legacy file is five pickles in a row (the magic number, the protocol version, the system
information, the saved object, whose tensors name their storages by persistent id, and the list
of storage keys), then each listed storage: its element count and its bytes. torch's own
loader allocates every storage at its declared size before reading it; here a storage larger
than the bytes that follow it is refused before anything is allocated, and every storage counts
against the file's allocation budget.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import torch

from ganzoo.errors import ConversionError
from ganzoo.readers._pickle_machine import _Corrupt, _Machine
from ganzoo.readers._pickle_values import _StorageRef, _StorageType, _count, _element_size, _expect_int, _is_str, _shown

if TYPE_CHECKING:
    from ganzoo.readers._pickle_loader import _Loader

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001


def load_legacy(loader: _Loader, data: bytes, *, inner: bool = False) -> Any:
    """Reads the legacy (non-zip) ``torch.save`` format held in ``data`` (``inner``: the bytes of
    a storage embedded in another pickle, ``torch.storage._load_from_bytes``)."""
    pos = _read_header(loader, data, inner)
    storages = _Storages(loader, data)
    result, pos = _Machine(loader, data, storages.declare).run(pos)
    keys, pos = _Machine(loader, data).run(pos)
    storages.fill(keys, pos)
    return result


def _read_header(loader: _Loader, data: bytes, inner: bool) -> int:
    """Checks the magic number, the protocol version and the byte order; returns where the saved
    object's pickle starts."""
    magic, pos = _Machine(loader, data).run(0)
    if type(magic) is not int or magic != _TORCH_LEGACY_MAGIC:
        if inner:
            raise _Corrupt("embedded storage is not in the torch legacy format")
        raise ConversionError(f"{loader.name}: not a torch.save file (no torch magic number)")
    version, pos = _Machine(loader, data).run(pos)
    if type(version) is not int or version != _TORCH_LEGACY_PROTOCOL:
        raise _Corrupt("unsupported torch legacy protocol version")
    sys_info, pos = _Machine(loader, data).run(pos)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ConversionError(f"{loader.name}: big-endian torch files are not supported")
    return pos


class _Storages:
    """The storages of a legacy file: declared while its object is unpickled (:meth:`declare`),
    filled from the bytes after its pickles (:meth:`fill`)."""

    def __init__(self, loader: _Loader, data: bytes) -> None:
        self.loader = loader
        self.data = data
        self.refs: dict[str, _StorageRef] = {}
        self.buffers: dict[str, bytearray] = {}

    def declare(self, pid: Any, at: int) -> _StorageRef:
        """The persistent-load hook: the storage ``pid`` names (created, empty, when first named;
        ``at`` is where the pickle is in the file)."""
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and _is_str(pid[0], "storage")):
            raise _Corrupt("unknown persistent id in torch legacy data")
        storage_type, key, location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise _Corrupt("storage type is not a torch storage class")
        if not isinstance(key, str) or not isinstance(location, str):
            raise _Corrupt("storage key and location must be strings")
        numel = _expect_int(numel, "storage size")
        if len(pid) == 6 and pid[5] is not None:
            raise _Corrupt("storage views (torch < 1.0 files) are not supported")
        if key in self.refs:
            ref = self.refs[key]
            if ref.dtype != storage_type.dtype or ref.numel != numel:
                raise _Corrupt(f"storage {_shown(key)} is declared twice differently")
            return ref
        nbytes = numel * _element_size(storage_type.dtype)
        # The data follows the pickles in the same file, so a storage can never be larger
        # than what is left of it: check before allocating.
        left = len(self.data) - at
        if nbytes > left:
            raise self.loader.unsafe(
                f"refused: a storage claims {_count(nbytes)} bytes but only {left:,} bytes of data follow"
            )
        self.loader.spend(nbytes, f"storage {_shown(key)}")
        # Tensors built later in this pickle are views of this storage, so it must exist now;
        # the bytes are filled in once the pickles are read. A bytearray-backed tensor makes
        # that fill a plain memmove (torch's copy_ costs ~2 ms per call here).
        buffer = bytearray(nbytes)
        flat = (
            torch.frombuffer(buffer, dtype=storage_type.dtype)
            if nbytes
            else torch.empty(0, dtype=storage_type.dtype)
        )
        ref = _StorageRef(storage_type.dtype, numel, flat)
        self.refs[key] = ref
        self.buffers[key] = buffer
        return ref

    def fill(self, keys: Any, pos: int) -> None:
        """Copies the bytes of each storage in ``keys`` (the file's list), which follow the
        pickles from ``pos`` on, each after its element count."""
        data = self.data
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise _Corrupt("torch legacy storage key list is malformed")
        filled: set[str] = set()
        for key in keys:
            ref = self.refs.get(key)
            if ref is None or key in filled:
                raise _Corrupt(f"storage {_shown(key)} is not declared or listed twice")
            if pos + 8 > len(data):
                raise _Corrupt(f"unexpected end of data at offset {len(data)} (storage header)")
            (numel,) = struct.unpack_from("<q", data, pos)
            pos += 8
            if numel != ref.numel:
                raise _Corrupt(f"storage {_shown(key)} holds {numel} elements, {ref.numel} declared")
            nbytes = numel * _element_size(ref.dtype)
            if pos + nbytes > len(data):
                raise _Corrupt(f"unexpected end of data at offset {len(data)} (storage data)")
            self.buffers[key][:] = data[pos : pos + nbytes]
            pos += nbytes
            filled.add(key)
        missing = set(self.refs) - filled
        if missing:
            raise _Corrupt(f"storage {_shown(sorted(missing)[0])} has no data")
