"""A corpus of malicious checkpoint files, for tests of ganzoo's safe readers.

:func:`build_corpus` writes every file into a directory. The code-execution entries
(:data:`CODE_EXECUTION`) would create ``marker`` if loaded with plain ``pickle.load`` or
``torch.load(weights_only=False)`` (the StyleGAN2-ADA persistence and TF ``Network`` entries when
the original ``torch_utils`` / ``dnnlib`` code is importable); the others are resource bombs or
damaged files. Payloads are written as raw pickle opcodes (or by ``torch.save`` of an object
whose ``__reduce__`` only *names* ``os.system``), so nothing runs while the corpus is built.

Usage::

    corpus = build_corpus(tmp_path / "corpus", tmp_path / "MARKER")
    for name, path in corpus.items(): ...
"""

from __future__ import annotations

import io
import os
import pickle
import shlex
import struct
from pathlib import Path

import torch

from helpers import fixtures_dir

# Entries that run code when loaded the unsafe way (checked by test_security's liveness test).
CODE_EXECUTION = frozenset(
    {
        "os_system.pkl",
        "inst_os_system.pkl",
        "subprocess_popen.pkl",
        "builtins_eval.pkl",
        "builtins_exec.pkl",
        "importlib_import_module.pkl",
        "getattr_chain.pkl",
        "dotted_global.pkl",
        "persistence_module_src.pkl",
        "tf_build_module_src.pkl",
        "load_from_bytes_payload.pkl",
        "numpy_object_array.pkl",
        "torch_zip_reduce.pt",
        "torch_legacy_reduce.pt",
    }
)

# Entries that a safe unpickler reads into inert stand-ins (the embedded source is kept as text
# and never run); the StyleGAN readers then refuse them as malformed networks.
INERT_STAND_INS = frozenset({"persistence_module_src.pkl", "tf_build_module_src.pkl"})

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_NESTING = 100_000

# -- raw opcode helpers (protocol 2 framing; every opcode used exists since protocol 2) --------

PROTO2 = b"\x80\x02"
STOP = b"."
MARK = b"("
POP = b"0"
TUPLE = b"t"
REDUCE = b"R"


def _str(text: str) -> bytes:
    data = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data


def _bytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _tuple(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _call(func: bytes, *args: bytes) -> bytes:
    return func + _tuple(*args) + REDUCE


def _put(index: int) -> bytes:
    return b"q" + bytes([index])


def _get(index: int) -> bytes:
    return b"h" + bytes([index])


def _dict(items: dict[str, bytes]) -> bytes:
    return b"}" + MARK + b"".join(_str(k) + v for k, v in items.items()) + b"u"


def _pickle(body: bytes) -> bytes:
    return PROTO2 + body + STOP


class _SystemCall:
    """Pickles as ``os.system(command)``; nothing runs when it is pickled."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _legacy_torch_blob(main_pickle: bytes, storages: list[tuple[str, int, bytes]]) -> bytes:
    """The legacy ``torch.save`` layout: magic, version, sys info, object, keys, raw storages."""
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}  # fmt: skip
    out = pickle.dumps(_TORCH_LEGACY_MAGIC, protocol=2)
    out += pickle.dumps(1001, protocol=2) + pickle.dumps(sys_info, protocol=2)
    out += main_pickle + pickle.dumps([key for key, _, _ in storages], protocol=2)
    for _, numel, data in storages:
        out += struct.pack("<q", numel) + data
    return out


def _storage_pid(key: str, numel: int) -> bytes:
    """A legacy persistent id ('storage', FloatStorage, key, 'cpu', numel, None), BINPERSID."""
    return _tuple(_str("storage"), _global("torch", "FloatStorage"), _str(key), _str("cpu"),
                  _int(numel), b"N") + b"Q"  # fmt: skip


def _float_storage_blob(numel_declared: int, data: bytes) -> bytes:
    return _legacy_torch_blob(_pickle(_storage_pid("0", numel_declared)), [("0", numel_declared, data)])


def _rebuild_tensor(storage_blob: bytes, size: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
    storage = _call(_global("torch.storage", "_load_from_bytes"), _bytes(storage_blob))
    hooks = _call(_global("collections", "OrderedDict"))
    return _call(
        _global("torch._utils", "_rebuild_tensor_v2"),
        storage, _int(0), _tuple(*map(_int, size)), _tuple(*map(_int, stride)), b"\x89", hooks,
    )  # fmt: skip


def build_corpus(directory: Path, marker: Path) -> dict[str, Path]:
    """Writes the malicious corpus into ``directory``.

    Args:
        directory: where to write (created if needed).
        marker: the file the code-execution payloads would create; it must not exist after any
            safe reader has looked at the corpus.

    Returns:
        File name -> path, one entry per file written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = str(Path(marker).resolve())
    shell = f"touch {shlex.quote(target)}"
    python_touch = f"import pathlib; pathlib.Path({target!r}).touch()"
    files: dict[str, bytes] = {}

    # -- code execution ---------------------------------------------------------------------
    files["os_system.pkl"] = _pickle(_call(_global("os", "system"), _str(shell)))
    # protocol 0: MARK, argument, INST os.system
    files["inst_os_system.pkl"] = b"(V" + shell.encode("raw-unicode-escape") + b"\nios\nsystem\n."
    files["subprocess_popen.pkl"] = _pickle(
        _call(_global("subprocess", "Popen"), b"]" + MARK + _str("touch") + _str(target) + b"e")
    )
    files["builtins_eval.pkl"] = _pickle(
        _call(_global("builtins", "eval"), _str(f"open({target!r}, 'w').close()"))
    )
    files["builtins_exec.pkl"] = _pickle(_call(_global("builtins", "exec"), _str(python_touch)))
    getattr_ = _global("builtins", "getattr")
    # import_module('os') first (memo 0), then getattr(memo 0, 'system')(shell).
    files["importlib_import_module.pkl"] = _pickle(
        _call(_global("importlib", "import_module"), _str("os")) + _put(0) + POP
        + _call(_call(getattr_, _get(0), _str("system")), _str(shell))
    )  # fmt: skip
    # From an allow-listed function to os.system through attribute lookups only:
    # _rebuild_tensor_v2.__globals__.get('sys').modules.get('os').system(shell)
    step = _call(getattr_, _global("torch._utils", "_rebuild_tensor_v2"), _str("__globals__"))
    step = _call(_call(getattr_, step, _str("get")), _str("sys"))
    step = _call(getattr_, step, _str("modules"))
    step = _call(_call(getattr_, step, _str("get")), _str("os"))
    files["getattr_chain.pkl"] = _pickle(_call(_call(getattr_, step, _str("system")), _str(shell)))
    # Protocol 4 resolves dotted names: a torch module's own `os` import reaches os.system.
    files["dotted_global.pkl"] = (
        b"\x80\x04" + _str("torch.serialization") + _str("os.system") + b"\x93"
        + _tuple(_str(shell)) + REDUCE + STOP
    )  # fmt: skip
    # StyleGAN2-ADA persistence: the original reconstructor executes module_src.
    meta = _dict(
        {
            "type": _str("class"),
            "version": _int(6),
            "module_src": _str(python_touch + "\n"),
            "class_name": _str("Generator"),
            "state": b"}",
        }
    )
    files["persistence_module_src.pkl"] = _pickle(
        _call(_global("torch_utils.persistence", "_reconstruct_persistent_obj"), meta)
    )
    # StyleGAN2 TF: Network.__setstate__ executes build_module_src.
    tf_state = _dict(
        {
            "version": _int(4),
            "name": _str("G"),
            "static_kwargs": b"}",
            "components": b"}",
            "build_module_src": _str(python_touch + "\n"),
            "build_func_name": _str("G_main"),
            "variables": b"]",
        }
    )
    files["tf_build_module_src.pkl"] = _pickle(
        _global("dnnlib.tflib.network", "Network") + b")\x81" + tf_state + b"b"
    )
    # An allow-listed global whose original runs torch.load(weights_only=False) on its bytes.
    inner = _legacy_torch_blob(_pickle(_call(_global("os", "system"), _str(shell))), [])
    files["load_from_bytes_payload.pkl"] = _pickle(
        _call(_global("torch.storage", "_load_from_bytes"), _bytes(inner))
    )
    # An object-dtype ndarray whose single element is os.system(shell).
    array = _call(_global("numpy.core.multiarray", "_reconstruct"), _global("numpy", "ndarray"),
                  _tuple(_int(0)), _bytes(b"b"))  # fmt: skip
    object_dtype = _call(_global("numpy", "dtype"), _str("O8"), b"\x89", b"\x88")
    object_dtype += _tuple(_int(3), _str("|"), b"N", b"N", b"N", _int(-1), _int(-1), _int(63)) + b"b"
    payload_list = b"]" + MARK + _call(_global("os", "system"), _str(shell)) + b"e"
    files["numpy_object_array.pkl"] = _pickle(
        array + _tuple(_int(1), _tuple(_int(1)), object_dtype, b"\x89", payload_list) + b"b"
    )

    # -- resource bombs ---------------------------------------------------------------------
    files["nested_marks.pkl"] = PROTO2 + MARK * _NESTING + b"l" * _NESTING + STOP
    files["nested_appends.pkl"] = PROTO2 + b"]" * _NESTING + b"a" * (_NESTING - 1) + STOP
    files["nested_tuple1.pkl"] = PROTO2 + b")" + b"\x85" * _NESTING + STOP
    files["self_reference.pkl"] = _pickle(b"]" + _put(0) + _get(0) + b"a")
    # A tuple nested a million deep used as a dict key: hashing it recurses in C and crashes
    # the interpreter (plain pickle segfaults).
    files["deep_tuple_key.pkl"] = _pickle(b"}" + b")" + b"\x85" * 1_000_000 + b"Ns")
    # Billion laughs through the memo: 9 levels of 10 references each = 10^9 leaves.
    laughs = _str("lol") + _put(0)
    for level in range(1, 10):
        laughs += POP + MARK + _get(level - 1) * 10 + b"l" + _put(level)
    files["memo_laughs.pkl"] = _pickle(laughs)
    one_float = _float_storage_blob(1, b"\x00" * 4)
    files["tensor_out_of_bounds.pkl"] = _pickle(
        _rebuild_tensor(one_float, (10**6, 10**6), (10**6, 1))
    )
    files["tensor_stride0.pkl"] = _pickle(_rebuild_tensor(one_float, (10**12,), (0,)))
    files["legacy_storage_bomb.pkl"] = _pickle(
        _rebuild_tensor(_float_storage_blob(10**12, b"\x00" * 4), (1,), (1,))
    )
    f4 = _call(_global("numpy", "dtype"), _str("f4"), b"\x89", b"\x88")
    files["ndarray_bomb.pkl"] = _pickle(
        array + _tuple(_int(1), _tuple(_int(10**6), _int(10**6)), f4, b"\x89", _bytes(b"\0" * 4)) + b"b"
    )

    # -- damaged files ----------------------------------------------------------------------
    fixture = fixtures_dir() / "stylegan2-ada/tiny32/tiny32-snapshot.pkl"
    snapshot = fixture.read_bytes()
    files["truncated.pkl"] = snapshot[: len(snapshot) // 2]

    paths = {}
    for name, data in files.items():
        paths[name] = directory / name
        paths[name].write_bytes(data)

    # -- torch files (torch.save only names os.system; nothing runs) --------------------------
    paths["torch_zip_reduce.pt"] = directory / "torch_zip_reduce.pt"
    torch.save({"weight": torch.zeros(2), "evil": _SystemCall(shell)}, paths["torch_zip_reduce.pt"])
    paths["torch_legacy_reduce.pt"] = directory / "torch_legacy_reduce.pt"
    torch.save(
        {"weight": torch.zeros(2), "evil": _SystemCall(shell)},
        paths["torch_legacy_reduce.pt"],
        _use_new_zipfile_serialization=False,
    )
    paths["torch_zip_stride0.pt"] = directory / "torch_zip_stride0.pt"
    torch.save({"weight": torch.zeros(1).expand(10**12)}, paths["torch_zip_stride0.pt"])
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(4)}, buffer)
    paths["torch_zip_truncated.pt"] = directory / "torch_zip_truncated.pt"
    paths["torch_zip_truncated.pt"].write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return paths
