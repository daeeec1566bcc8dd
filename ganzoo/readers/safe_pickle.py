"""A restricted unpickler for foreign GAN checkpoints: it rebuilds data and never runs code.

Public GAN checkpoints are pickles, and a pickle is a program: ``pickle.load`` imports any global
the file names and calls it. StyleGAN2-ADA pickles go further and embed the network's Python
source, which the original loader *executes*; StyleGAN2 TensorFlow pickles do the same with
``build_module_src``. This module reads such files with its own small pickle machine instead of
``pickle``:

* every global the file names is looked up in an allow-list and replaced by a callable written
  here (tensor and array rebuilders that check their inputs, plain containers, and inert
  stand-ins for the network objects); any other global is refused with
  :class:`~ganzoo.errors.UnsafeCheckpointError` before anything is imported;
* the network objects become :class:`PersistentObject` / :class:`TFNetwork`, which only hold the
  pickled state; the embedded source is kept as a string and never compiled;
* resources are bounded: nesting depth, stack size, the bytes of tensors and arrays the file may
  ask for (a few times its own size), and the size of the object tree a naive walk would visit
  (memo-reuse "billion laughs" bombs); reference cycles are refused.

Truncated or malformed pickles raise :class:`~ganzoo.errors.ConversionError`. Every error is one
line that names the file.

Torch files (``torch.save``) are handled by :func:`load_torch_file`: zip archives are first
checked with this module's allow-list and limits, then loaded by ``torch.load(...,
weights_only=True)``; legacy (non-zip) torch files are read entirely by this module.

Its parts: the opcode interpreter (:mod:`~ganzoo.readers._pickle_machine`), the allow-list and
the safe callables (:mod:`~ganzoo.readers._pickle_loader`), the stand-ins and checks on values
(:mod:`~ganzoo.readers._pickle_values`), the legacy torch format
(:mod:`~ganzoo.readers._torch_legacy`); here, the entry points and the checks on the loaded
object graph.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, Callable, Iterable

import numpy as np
import torch

from ganzoo.errors import ConversionError, GanzooError, UnsafeCheckpointError
from ganzoo.readers._pickle_loader import _Loader
from ganzoo.readers._pickle_machine import MAX_NESTING, EasyDict, _Corrupt, _Machine
from ganzoo.readers._pickle_values import (
    PersistentObject,
    TFNetwork,
    _StorageRef,
    _StorageType,
    _count,
    _element_size,
    _expect_int,
    _is_str,
    _one_line,
    _shown,
)
from ganzoo.readers._torch_legacy import _TORCH_LEGACY_MAGIC, load_legacy

__all__ = [
    "EasyDict",
    "PersistentObject",
    "TFNetwork",
    "load_pickle",
    "load_torch_file",
    "plain",
]

# Limits. Real checkpoints stay far below each of them (the StyleGAN2-ADA fixtures nest about 25
# containers deep and hold about 40k objects); pickle bombs go far above. The nesting limit is
# the machine's (MAX_NESTING), the allocation budget the loader's (ALLOCATION_FACTOR).
MAX_EXPANDED_NODES = 5_000_000  # objects a walk that does not share subtrees would visit
MAX_PLAIN_DEPTH = 64
MAX_PLAIN_NODES = 1_000_000


# --------------------------------------------------------------------------------------------
# Checks on the loaded object graph
# --------------------------------------------------------------------------------------------


def _children(obj: Any) -> Iterable[Any] | None:
    """The objects ``obj`` refers to, or None for a leaf."""
    kind = type(obj)
    if kind in (list, tuple, set, frozenset):
        return obj
    if kind in (dict, EasyDict, collections.OrderedDict):
        return [x for item in obj.items() for x in item]
    if kind is PersistentObject:
        return (obj.meta,)
    if kind is TFNetwork:
        return (obj.state,)
    return None


def _check_graph(root: Any, name: str) -> None:
    """Refuses deep nesting, reference cycles and memo-reuse ("billion laughs") bombs.

    Walks every distinct container once (iteratively, so a deep structure cannot exhaust the
    Python stack here) and computes, for each, its depth and the number of objects a naive walk
    that does not notice shared subtrees would visit.
    """
    top = _children(root)
    if top is None:
        return
    finished: dict[int, tuple[int, int]] = {}  # id -> (depth, expanded size)
    on_path = {id(root)}
    frames: list[list[Any]] = [[root, iter(top), 0, 1]]  # obj, children, max child depth, size

    def too_big() -> UnsafeCheckpointError:
        return UnsafeCheckpointError(
            f"{name}: refused: its objects expand to more than {MAX_EXPANDED_NODES:,} nodes "
            f"through shared references (a 'billion laughs' pickle bomb?)"
        )

    while frames:
        frame = frames[-1]
        for child in frame[1]:
            grandchildren = _children(child)
            if grandchildren is None:
                frame[3] += 1
                continue
            key = id(child)
            done = finished.get(key)
            if done is not None:
                frame[2] = max(frame[2], done[0])
                frame[3] += done[1]
                if frame[3] > MAX_EXPANDED_NODES:
                    raise too_big()
                continue
            if key in on_path:
                raise UnsafeCheckpointError(f"{name}: refused: a container contains itself")
            if len(frames) >= MAX_NESTING:
                raise UnsafeCheckpointError(
                    f"{name}: refused: containers nested deeper than {MAX_NESTING}"
                )
            on_path.add(key)
            frames.append([child, iter(grandchildren), 0, 1])
            break
        else:
            frames.pop()
            on_path.discard(id(frame[0]))
            depth, size = frame[2] + 1, frame[3]
            if size > MAX_EXPANDED_NODES:
                raise too_big()
            finished[id(frame[0])] = (depth, size)
            if frames:
                parent = frames[-1]
                parent[2] = max(parent[2], depth)
                parent[3] += size


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def _read_input(path_or_file: Any, what: str | None) -> tuple[bytes, str]:
    """Reads a path, a binary file object or a bytes object; returns its bytes and its name."""
    if isinstance(path_or_file, (bytes, bytearray, memoryview)):
        return bytes(path_or_file), _one_line(what or "<bytes>", 300)
    if hasattr(path_or_file, "read"):
        name = _one_line(what or getattr(path_or_file, "name", "<stream>"), 300)
        try:
            data = path_or_file.read()
        except OSError as exc:
            raise ConversionError(f"{name}: cannot read ({_one_line(exc)})") from exc
        if not isinstance(data, bytes):
            raise ConversionError(f"{name}: not a binary file object")
        return data, name
    name = _one_line(what or os.fspath(path_or_file), 300)
    try:
        with open(path_or_file, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConversionError(f"{name}: cannot read ({_one_line(exc.strerror or exc)})") from exc
    return data, name


def _guarded(name: str, work: Callable[[], Any]) -> Any:
    """Runs ``work`` and turns every failure into a one-line GanzooError that names the file."""
    try:
        return work()
    except GanzooError:
        raise
    except _Corrupt as exc:
        raise ConversionError(f"{name}: truncated or corrupt pickle ({_one_line(exc)})") from None
    except MemoryError:
        raise UnsafeCheckpointError(
            f"{name}: refused: reading it ran out of memory (a pickle bomb?)"
        ) from None
    except (
        IndexError, KeyError, TypeError, ValueError, AttributeError, struct.error,
        UnicodeDecodeError, OverflowError, RuntimeError, EOFError, RecursionError,
    ) as exc:  # fmt: skip
        detail = _one_line(f"{type(exc).__name__}: {exc}")
        raise ConversionError(f"{name}: truncated or corrupt pickle ({detail})") from None


def load_pickle(path_or_file: Any, *, what: str | None = None) -> object:
    """Unpickles a foreign checkpoint without running any code from it.

    Only the globals on this module's allow-list are honoured (torch tensors and storages, numpy
    arrays and scalars, plain containers, ``dnnlib.util.EasyDict``, and the StyleGAN2-ADA /
    StyleGAN2-TF network objects, which become :class:`PersistentObject` / :class:`TFNetwork`).

    Args:
        path_or_file: a path, a binary file object, or the bytes of the pickle.
        what: the name to use in error messages (default: the path or the file object's name).

    Returns:
        The unpickled object; tensors are plain CPU tensors (parameters included).

    Raises:
        UnsafeCheckpointError: the file names a global outside the allow-list, or is built to
            exhaust memory or the stack (deep nesting, huge tensors, memo-reuse bombs, cycles).
        ConversionError: the file is unreadable, truncated or not a pickle.
    """
    data, name = _read_input(path_or_file, what)
    if not data:
        raise ConversionError(f"{name}: empty file")
    if data[:4] == b"PK\x03\x04":
        raise ConversionError(
            f"{name}: a zip archive (torch.save format), not a pickle; read it with load_torch_file"
        )
    loader = _Loader(name, len(data))

    def work() -> Any:
        result, end = _Machine(loader, data).run(0)
        if type(result) is int and result == _TORCH_LEGACY_MAGIC and end < len(data):
            # pickle.load would return just this number; the file is a legacy torch.save file.
            raise ConversionError(
                f"{name}: a legacy torch.save file, not a plain pickle; read it with load_torch_file"
            )
        _check_graph(result, name)
        return result

    return _guarded(name, work)


def load_torch_file(path: Any, *, what: str | None = None) -> object:
    """Loads a ``torch.save`` file safely.

    Zip archives (the default format since torch 1.6) are first checked with this module's
    allow-list and limits (so a ``__reduce__`` payload is refused naming its global, and a
    tensor view larger than the file allows is refused), then loaded with
    ``torch.load(..., map_location='cpu', weights_only=True)`` from the very bytes that were
    checked. Legacy (non-zip) torch files are read entirely by this module's restricted
    unpickler, because torch's legacy loader allocates storages of the declared size before
    reading them.

    Args:
        path: a path, a binary file object, or the file's bytes.
        what: the name to use in error messages (default: the path).

    Returns:
        What the file holds (typically a state dict of CPU tensors).

    Raises:
        UnsafeCheckpointError: the file asks for code or for more memory than its size allows.
        ConversionError: the file is unreadable, truncated, or not a torch file.
    """
    data, name = _read_input(path, what)
    if not data:
        raise ConversionError(f"{name}: empty file")
    if data[:4] != b"PK\x03\x04":
        loader = _Loader(name, len(data))

        def work_legacy() -> Any:
            result = load_legacy(loader, data)
            _check_graph(result, name)
            return result

        return _guarded(name, work_legacy)

    _guarded(name, lambda: _check_torch_zip(data, name))
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except GanzooError:
        raise
    except pickle.UnpicklingError as exc:
        first = _one_line(str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
        raise UnsafeCheckpointError(
            f"{name}: refused by torch.load(weights_only=True): {first}"
        ) from None
    except MemoryError:
        raise UnsafeCheckpointError(f"{name}: refused: loading it ran out of memory") from None
    except Exception as exc:  # torch raises RuntimeError/ValueError/... for broken archives
        first = _one_line(str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
        raise ConversionError(
            f"{name}: corrupt torch file ({type(exc).__name__}: {first})"
        ) from None


def _check_torch_zip(data: bytes, name: str) -> None:
    """Checks a torch zip archive's data.pkl with the allow-list, without reading tensor data."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise ConversionError(f"{name}: corrupt zip archive ({_one_line(exc)})") from None
    pickles = [n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise ConversionError(f"{name}: not a torch.save archive (no single <name>/data.pkl)")
    prefix = pickles[0][: -len("data.pkl")]
    loader = _Loader(name, len(data), scan=True)
    loader.spend(infos[pickles[0]].file_size, "data.pkl")
    byteorder = infos.get(prefix + "byteorder")
    if byteorder is not None and byteorder.file_size <= 16:
        if archive.read(byteorder).strip() not in (b"little", b""):
            raise ConversionError(f"{name}: big-endian torch files are not supported")
    try:
        pickle_bytes = archive.read(pickles[0])
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ConversionError(f"{name}: corrupt zip archive ({_one_line(exc)})") from None

    seen: dict[str, _StorageRef] = {}

    def persistent_load(pid: Any, at: int) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 5 and _is_str(pid[0], "storage")):
            raise _Corrupt("unknown persistent id in data.pkl")
        storage_type, key, location, numel = pid[1:]
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise _Corrupt("malformed storage reference in data.pkl")
        numel = _expect_int(numel, "storage size")
        if key in seen:
            return seen[key]
        record = infos.get(f"{prefix}data/{key}")
        if record is None:
            raise ConversionError(f"{name}: storage record data/{_shown(key)} is missing")
        nbytes = numel * _element_size(storage_type.dtype)
        if record.file_size != nbytes:
            raise ConversionError(
                f"{name}: storage record data/{_shown(key)} holds {record.file_size:,} bytes, "
                f"{_count(nbytes)} declared"
            )
        loader.spend(nbytes, f"storage {_shown(key)}")
        seen[key] = _StorageRef(storage_type.dtype, numel, None)
        return seen[key]

    result, _ = _Machine(loader, pickle_bytes, persistent_load).run(0)
    _check_graph(result, name)


def plain(obj: Any, *, what: str | None = None) -> Any:
    """Turns loaded constructor kwargs into JSON-able plain values.

    EasyDict/OrderedDict become dicts, tuples and lists become lists, sets become sorted lists,
    numpy scalars become Python numbers; strings, numbers, bools and None stay as they are.

    Args:
        obj: the value to convert.
        what: a name for error messages, e.g. ``"G.pkl: G init_kwargs"``.

    Returns:
        The plain value.

    Raises:
        ConversionError: a value is not JSON-able (a tensor, bytes, ...), a dict key is not a
            string, or the value nests deeper than 64 levels or holds more than a million items.
    """
    label = what or "value"
    count = 0

    def convert(value: Any, path: str, depth: int) -> Any:
        nonlocal count
        count += 1
        if count > MAX_PLAIN_NODES:
            raise ConversionError(f"{label}: more than {MAX_PLAIN_NODES:,} items")
        if depth > MAX_PLAIN_DEPTH:
            raise ConversionError(f"{label}: nested deeper than {MAX_PLAIN_DEPTH} at {path}")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value) if isinstance(value, int) else float(value)
        if isinstance(value, (np.bool_, np.integer, np.floating)):
            return value.item()
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ConversionError(f"{label}: key {_shown(repr(key))} at {path} is not a string")
                out[key] = convert(item, f"{path}.{key}", depth + 1)
            return out
        if isinstance(value, (list, tuple)):
            return [convert(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
        if isinstance(value, (set, frozenset)):
            items = [convert(item, f"{path}{{}}", depth + 1) for item in value]
            try:
                return sorted(items)
            except TypeError:
                return sorted(items, key=repr)
        raise ConversionError(
            f"{label}: value at {path} is a {type(value).__name__}, not a JSON-able value"
        )

    return convert(obj, "$", 0)
