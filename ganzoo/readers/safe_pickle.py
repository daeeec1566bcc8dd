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
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import re
import struct
import zipfile
from typing import Any, Callable, Iterable

import numpy as np
import torch

from ganzoo.readers._pickle_machine import MAX_NESTING, EasyDict, _Callable, _Corrupt, _Machine
from ganzoo.errors import ConversionError, GanzooError, UnsafeCheckpointError

__all__ = [
    "EasyDict",
    "PersistentObject",
    "TFNetwork",
    "load_pickle",
    "load_torch_file",
    "plain",
]

# Limits. Real checkpoints stay far below each of them (the StyleGAN2-ADA fixtures nest about 25
# containers deep and hold about 40k objects); pickle bombs go far above.
MAX_EXPANDED_NODES = 5_000_000  # objects a walk that does not share subtrees would visit
MAX_TENSOR_DIMS = 64
ALLOCATION_FACTOR = 4  # tensors/arrays/storages may need at most this many times the file size ...
ALLOCATION_SLACK = 1 << 20  # ... plus this many bytes
MAX_PLAIN_DEPTH = 64
MAX_PLAIN_NODES = 1_000_000

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001


# --------------------------------------------------------------------------------------------
# Stand-ins for the objects of foreign code bases
# --------------------------------------------------------------------------------------------


class PersistentObject:
    """Stand-in for a StyleGAN2-ADA "persistent" network object.

    The original pickle calls ``torch_utils.persistence._reconstruct_persistent_obj(meta)``, which
    executes ``meta['module_src']`` and builds the class it defines. Here the ``meta`` dict is only
    stored: the source is never compiled or executed.

    Attributes:
        meta: the pickled dict ``{type, version, module_src, class_name, state}``.
    """

    __slots__ = ("meta",)

    def __init__(self, meta: dict) -> None:
        self.meta = meta

    @property
    def class_name(self) -> str:
        """The pickled class name as stored (``'Generator'``, or dotted in some writers)."""
        return str(self.meta.get("class_name", ""))

    @property
    def short_name(self) -> str:
        """The class name without any module prefix, e.g. ``'Generator'``."""
        return self.class_name.rsplit(".", 1)[-1]

    @property
    def state(self) -> Any:
        """The module's pickled ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``, ...)."""
        return self.meta.get("state")

    @property
    def module_src(self) -> str | None:
        """The embedded Python source, kept as text for inspection only."""
        src = self.meta.get("module_src")
        return src if isinstance(src, str) else None

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name!r})"


class TFNetwork:
    """Stand-in for ``dnnlib.tflib.network.Network`` (StyleGAN2 TensorFlow pickles).

    The original ``__setstate__`` executes ``state['build_module_src']`` and builds a TF graph.
    Here the state dict is only stored.

    Attributes:
        state: the pickled state dict (``version``, ``name``, ``static_kwargs``, ``components``,
            ``build_module_src``, ``build_func_name``, ``variables``), or None before BUILD.
    """

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state: dict | None = None

    @property
    def name(self) -> str | None:
        """The network's name (``'G'``, ``'G_mapping'``, ...), when the state has one."""
        return self.state.get("name") if isinstance(self.state, dict) else None

    def __repr__(self) -> str:
        return f"TFNetwork({self.name!r})"


# --------------------------------------------------------------------------------------------
# Internal value types
# --------------------------------------------------------------------------------------------


class _Token:
    """An allow-listed global that is only ever an argument (e.g. ``numpy.ndarray``)."""

    __slots__ = ("qualname",)

    def __init__(self, qualname: str) -> None:
        self.qualname = qualname

    def __repr__(self) -> str:
        return f"<global {self.qualname}>"


class _StorageType(_Token):
    """``torch.FloatStorage`` and friends: a token that carries the element dtype."""

    __slots__ = ("dtype",)

    def __init__(self, qualname: str, dtype: torch.dtype) -> None:
        super().__init__(qualname)
        self.dtype = dtype


class _StorageRef:
    """A torch storage: ``numel`` elements of ``dtype``; ``flat`` is None when only scanning."""

    __slots__ = ("dtype", "numel", "flat")

    def __init__(self, dtype: torch.dtype, numel: int, flat: torch.Tensor | None) -> None:
        self.dtype = dtype
        self.numel = numel
        self.flat = flat

    def __repr__(self) -> str:
        return f"<storage {self.dtype} x {self.numel}>"


class _ScannedTensor:
    """What a tensor becomes while a torch zip is only being checked (its data is not read)."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        self.shape = shape
        self.dtype = dtype


_NDARRAY = _Token("numpy.ndarray")

_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}

_TORCH_DTYPE_NAMES = (
    "float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long",
    "int32", "int", "int16", "short", "int8", "uint8", "bool", "complex64", "complex128",
)  # fmt: skip

# Numeric and boolean numpy dtypes only: object dtypes would let the pickle place arbitrary
# objects (and, through them, code) inside an array; structured/void/string dtypes are not used by
# any checkpoint format we read.
_NUMPY_DTYPE_RE = re.compile(r"[<>|=]?(b1|i1|i2|i4|i8|u1|u2|u4|u8|f2|f4|f8|c8|c16)\Z")

# Python 2 module names that protocol <= 2 pickles may use for the same builtins.
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


def _one_line(text: object, limit: int = 200) -> str:
    """Makes ``text`` safe to put in a one-line error message."""
    s = str(text)
    s = "".join(c if c.isprintable() else " " for c in s).strip()
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _shown(text: str) -> str:
    """Quotes a name read from the file for an error message (one line, bounded)."""
    return _one_line(text, 120)


def _is_str(value: Any, expected: str) -> bool:
    # Type first: == on a value from the file could be an elementwise tensor/array comparison.
    return type(value) is str and value == expected


def _count(n: int) -> str:
    """Formats a (possibly absurd) count read from a file for a one-line message."""
    return f"{n:,}" if n < 10**21 else f"about 2^{n.bit_length()}"


def _expect_int(value: Any, what: str, minimum: int = 0) -> int:
    if type(value) is not int:
        raise _Corrupt(f"{what} must be an integer, got a {type(value).__name__}")
    if value < minimum:
        raise _Corrupt(f"{what} must be >= {minimum}, got {_count(value)}")
    return value


def _expect_int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) > MAX_TENSOR_DIMS:
        raise _Corrupt(f"{what} must be a tuple of at most {MAX_TENSOR_DIMS} integers")
    return tuple(_expect_int(v, what) for v in value)


def _element_size(dtype: torch.dtype) -> int:
    return dtype.itemsize


# --------------------------------------------------------------------------------------------
# The loader: allow-list, budget and the safe callables
# --------------------------------------------------------------------------------------------


class _Loader:
    """State shared by all pickles of one file: its name, allow-list and allocation budget."""

    def __init__(self, name: str, file_size: int, *, scan: bool = False) -> None:
        self.name = name
        self.scan = scan  # torch zip check: storages carry no data, tensors are not built
        self.budget = ALLOCATION_FACTOR * file_size + ALLOCATION_SLACK
        self.spent = 0
        self.legacy_depth = 0
        # Objects that BUILD may still fill in: only those created here, each at most once.
        self.fresh: dict[int, Any] = {}
        # Nesting depth of the tuples built so far (and the tuples themselves, so ids stay
        # unique): hashing a tuple recurses in C without a recursion guard, so a tuple nested a
        # million deep used as a dict key would crash the interpreter before any later check.
        self.tuple_depth: dict[int, tuple[int, tuple]] = {}
        self.globals = self._allow_list()

    # -- errors and budget ----------------------------------------------------------------

    def unsafe(self, message: str) -> UnsafeCheckpointError:
        return UnsafeCheckpointError(f"{self.name}: {message}")

    def spend(self, nbytes: int, what: str) -> None:
        """Counts ``nbytes`` of tensor/array memory against the file's budget."""
        self.spent += nbytes
        if self.spent > self.budget:
            raise self.unsafe(
                f"refused: {what} needs {_count(nbytes)} bytes, which takes the file over its allocation "
                f"budget of {self.budget:,} bytes ({ALLOCATION_FACTOR}x its size; a pickle bomb?)"
            )

    def tracked_tuple(self, items: Iterable[Any]) -> tuple:
        """Builds a tuple, refusing tuple-in-tuple chains deeper than MAX_NESTING."""
        value = tuple(items)
        depth = 1
        for item in value:
            if type(item) is tuple:
                entry = self.tuple_depth.get(id(item))
                child = entry[0] if entry is not None else 1  # untracked: holds no tuple
                if child >= depth:
                    depth = child + 1
        if depth > 1:
            if depth > MAX_NESTING:
                raise self.unsafe(f"refused: containers nested deeper than {MAX_NESTING}")
            self.tuple_depth[id(value)] = (depth, value)
        return value

    def resolve(self, module: str, name: str) -> Any:
        """Returns the safe replacement of the global ``module.name`` or refuses it."""
        module = _PY2_MODULES.get(module, module)
        qualname = f"{module}.{name}"
        try:
            return self.globals[qualname]
        except KeyError:
            raise self.unsafe(
                f"refused global '{_shown(qualname)}' (only tensors, arrays and plain containers "
                f"are loaded; this file asks to import code)"
            ) from None

    # -- the allow-list -------------------------------------------------------------------

    def _allow_list(self) -> dict[str, Any]:
        table: dict[str, Any] = {}

        def allow(qualname: str, fn: Callable[..., Any], newobj: bool = False) -> None:
            table[qualname] = _Callable(qualname, fn, newobj)

        # torch tensors and storages
        allow("torch._utils._rebuild_tensor_v2", self._rebuild_tensor_v2)
        allow("torch._utils._rebuild_parameter", self._rebuild_parameter)
        allow("torch._utils._rebuild_parameter_with_state", self._rebuild_parameter_with_state)
        allow("torch.storage._load_from_bytes", self._load_from_bytes)
        allow("torch.Size", _make_size)
        allow("torch.device", _make_device)
        for storage_name, dtype in _STORAGE_DTYPES.items():
            table[f"torch.{storage_name}"] = _StorageType(f"torch.{storage_name}", dtype)
        for dtype_name in _TORCH_DTYPE_NAMES:
            table[f"torch.{dtype_name}"] = getattr(torch, dtype_name)
        # numpy (both the numpy 1.x and 2.x module paths)
        for core in ("numpy.core", "numpy._core"):
            allow(f"{core}.multiarray._reconstruct", self._np_reconstruct)
            allow(f"{core}.multiarray.scalar", self._np_scalar)
            allow(f"{core}.numeric._frombuffer", self._np_frombuffer)
        table["numpy.ndarray"] = _NDARRAY
        allow("numpy.dtype", self._np_dtype)
        # plain containers and harmless builtins
        allow("collections.OrderedDict", _make_ordered_dict, newobj=True)
        allow("builtins.set", _make_set)
        allow("builtins.frozenset", _make_frozenset)
        allow("builtins.bytearray", _make_bytearray)
        allow("builtins.complex", _make_complex)
        allow("_codecs.encode", _codecs_encode)
        allow("copyreg.__newobj__", _copyreg_newobj)
        # stand-ins for the foreign code bases
        allow("dnnlib.util.EasyDict", _make_easydict, newobj=True)
        allow("torch_utils.persistence._reconstruct_persistent_obj", _reconstruct_persistent_obj)
        allow("dnnlib.tflib.network.Network", self._make_tf_network, newobj=True)
        return table

    # -- torch ----------------------------------------------------------------------------

    def _rebuild_tensor_v2(
        self,
        storage: Any,
        storage_offset: Any,
        size: Any,
        stride: Any,
        requires_grad: Any = False,
        backward_hooks: Any = None,
        metadata: Any = None,
    ) -> torch.Tensor | _ScannedTensor:
        if not isinstance(storage, _StorageRef):
            raise _Corrupt(f"_rebuild_tensor_v2 expects a storage, got {type(storage).__name__}")
        offset = _expect_int(storage_offset, "tensor storage offset")
        shape = _expect_int_tuple(size, "tensor size")
        strides = _expect_int_tuple(stride, "tensor stride")
        if len(shape) != len(strides):
            raise _Corrupt("tensor size and stride have different lengths")
        if backward_hooks or metadata:
            # Hooks are callables and metadata sets tensor flags; neither belongs in weights.
            raise _Corrupt("tensor with backward hooks or metadata is not supported")
        numel = math.prod(shape)
        if numel:
            extent = offset + sum((n - 1) * s for n, s in zip(shape, strides)) + 1
            if extent > storage.numel:
                raise self.unsafe(
                    f"refused: a tensor of size {_shown(str(shape))} and stride "
                    f"{_shown(str(strides))} reads {_count(extent)} elements from a storage of "
                    f"{_count(storage.numel)}"
                )
        # Count the tensor's logical size, not only its storage: a stride-0 view of one element
        # claiming 10^12 elements costs nothing here but everything once someone copies it.
        self.spend(numel * _element_size(storage.dtype), f"a tensor of size {_shown(str(shape))}")
        if storage.flat is None:
            return _ScannedTensor(shape, storage.dtype)
        return storage.flat.as_strided(shape, strides, offset)

    def _rebuild_parameter(self, data: Any, requires_grad: Any = False, hooks: Any = None) -> Any:
        if not isinstance(data, (torch.Tensor, _ScannedTensor)) or hooks:
            raise _Corrupt("_rebuild_parameter expects a tensor and no hooks")
        # Parameters are returned as plain tensors, as nn.Module.state_dict() does.
        return data

    def _rebuild_parameter_with_state(
        self, data: Any, requires_grad: Any, hooks: Any, state: Any
    ) -> Any:
        # The extra state holds Python attributes of a Parameter subclass; weights do not need it
        # and setting attributes from a file is exactly what we avoid.
        return self._rebuild_parameter(data, requires_grad, hooks)

    def _load_from_bytes(self, blob: Any) -> _StorageRef:
        """``torch.storage._load_from_bytes``: a storage saved in the legacy torch format.

        The original calls ``torch.load(..., weights_only=False)`` on the embedded bytes; here
        they are parsed by this module like any other legacy torch file.
        """
        if not isinstance(blob, (bytes, bytearray)):
            raise _Corrupt("_load_from_bytes expects bytes")
        if self.legacy_depth:
            raise self.unsafe("refused: a storage embedded in an embedded storage")
        self.legacy_depth += 1
        try:
            storage = self.load_legacy(bytes(blob), inner=True)
        finally:
            self.legacy_depth -= 1
        if not isinstance(storage, _StorageRef):
            raise _Corrupt("_load_from_bytes data does not hold a storage")
        return storage

    def load_legacy(self, data: bytes, *, inner: bool = False) -> Any:
        """Reads the legacy (non-zip) ``torch.save`` format held in ``data``."""
        magic, pos = _Machine(self, data).run(0)
        if type(magic) is not int or magic != _TORCH_LEGACY_MAGIC:
            if inner:
                raise _Corrupt("embedded storage is not in the torch legacy format")
            raise ConversionError(f"{self.name}: not a torch.save file (no torch magic number)")
        version, pos = _Machine(self, data).run(pos)
        if type(version) is not int or version != _TORCH_LEGACY_PROTOCOL:
            raise _Corrupt("unsupported torch legacy protocol version")
        sys_info, pos = _Machine(self, data).run(pos)
        if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
            raise ConversionError(f"{self.name}: big-endian torch files are not supported")

        storages: dict[str, _StorageRef] = {}
        buffers: dict[str, bytearray] = {}

        def persistent_load(pid: Any, at: int) -> _StorageRef:
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
            if key in storages:
                ref = storages[key]
                if ref.dtype != storage_type.dtype or ref.numel != numel:
                    raise _Corrupt(f"storage {_shown(key)} is declared twice differently")
                return ref
            nbytes = numel * _element_size(storage_type.dtype)
            # The data follows the pickles in the same file, so a storage can never be larger
            # than what is left of it: check before allocating.
            if nbytes > len(data) - at:
                raise self.unsafe(
                    f"refused: a storage claims {_count(nbytes)} bytes but only {len(data) - at:,} "
                    f"bytes of data follow"
                )
            self.spend(nbytes, f"storage {_shown(key)}")
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
            storages[key] = ref
            buffers[key] = buffer
            return ref

        result, pos = _Machine(self, data, persistent_load).run(pos)
        keys, pos = _Machine(self, data).run(pos)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise _Corrupt("torch legacy storage key list is malformed")
        filled: set[str] = set()
        for key in keys:
            ref = storages.get(key)
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
            buffers[key][:] = data[pos : pos + nbytes]
            pos += nbytes
            filled.add(key)
        missing = set(storages) - filled
        if missing:
            raise _Corrupt(f"storage {_shown(sorted(missing)[0])} has no data")
        return result

    # -- numpy ----------------------------------------------------------------------------

    def _check_np_dtype(self, dtype: Any) -> np.dtype:
        if not isinstance(dtype, np.dtype):
            raise _Corrupt(f"expected a numpy dtype, got {type(dtype).__name__}")
        if dtype.hasobject or dtype.kind not in "biufc" or dtype.fields or dtype.subdtype:
            raise self.unsafe(f"refused numpy dtype '{_shown(str(dtype))}'")
        return dtype

    def _np_dtype(self, obj: Any, align: Any = False, copy: Any = False) -> np.dtype:
        if not isinstance(obj, str):
            raise _Corrupt("numpy dtype must be given by a string")
        if obj.lstrip("<>|=").startswith("O"):
            raise self.unsafe(
                f"refused numpy dtype '{_shown(obj)}' (object arrays can hold arbitrary objects)"
            )
        if not _NUMPY_DTYPE_RE.match(obj):
            raise ConversionError(f"{self.name}: unsupported numpy dtype '{_shown(obj)}'")
        # copy=True gives a fresh descriptor, so a later BUILD (byte order) cannot modify the
        # shared builtin one.
        dtype = np.dtype(obj, bool(align), True)
        self.fresh[id(dtype)] = dtype
        return dtype

    def _np_reconstruct(self, subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
        if subtype is not _NDARRAY:
            raise self.unsafe(
                f"refused numpy _reconstruct of a {type(subtype).__name__} (only plain ndarrays)"
            )
        array = np.empty((0,), dtype=np.int8)
        self.fresh[id(array)] = array
        return array

    def _np_scalar(self, dtype: Any, data: Any = None) -> np.generic:
        dtype = self._check_np_dtype(dtype)
        if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
            raise _Corrupt("numpy scalar data does not match its dtype")
        return np.frombuffer(bytes(data), dtype=dtype, count=1)[0]

    def _np_frombuffer(self, buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
        dtype = self._check_np_dtype(dtype)
        shape = _expect_int_tuple(shape, "array shape")
        if not isinstance(buffer, (bytes, bytearray)) or order not in ("C", "F"):
            raise _Corrupt("numpy _frombuffer arguments are malformed")
        self._check_array_bytes(shape, dtype, len(buffer))
        return np.frombuffer(bytes(buffer), dtype=dtype).reshape(shape, order=order).copy()

    def _check_array_bytes(self, shape: tuple[int, ...], dtype: np.dtype, have: int) -> None:
        need = math.prod(shape) * dtype.itemsize
        if need != have:
            raise self.unsafe(
                f"refused: a numpy array of shape {_shown(str(shape))} and dtype {dtype} needs "
                f"{_count(need)} bytes but its data has {have:,}"
            )
        self.spend(need, f"a numpy array of shape {_shown(str(shape))}")

    def _build_array(self, array: np.ndarray, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _Corrupt("numpy array state is malformed")
        if len(state) == 5:
            state = state[1:]
        shape, dtype, is_fortran, raw = state
        shape = _expect_int_tuple(shape, "array shape")
        dtype = self._check_np_dtype(dtype)
        if not isinstance(is_fortran, bool) or not isinstance(raw, (bytes, bytearray)):
            raise _Corrupt("numpy array state is malformed")
        self._check_array_bytes(shape, dtype, len(raw))
        # Validated above: a plain numeric dtype and exactly the bytes the shape needs. numpy
        # copies the bytes into the array.
        array.__setstate__((1, shape, dtype, is_fortran, bytes(raw)))

    def _build_dtype(self, dtype: np.dtype, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise _Corrupt("numpy dtype state is malformed")
        byteorder = state[1]
        if byteorder not in ("<", ">", "|", "=") or any(s is not None for s in state[2:5]):
            raise ConversionError(f"{self.name}: unsupported numpy dtype state")
        if len(state) == 9 and state[8] is not None:
            raise ConversionError(f"{self.name}: unsupported numpy dtype metadata")
        # Only the byte order is taken from the file; sizes and flags are the descriptor's own
        # (a flags field could otherwise mark numbers as object references).
        dtype.__setstate__((3, byteorder, None, None, None, -1, -1, dtype.flags))

    # -- state-dict metadata ----------------------------------------------------------------

    def _build_state_dict_metadata(self, obj: collections.OrderedDict, state: dict) -> None:
        """BUILD on an ``OrderedDict``: the ``_metadata`` that ``nn.Module.state_dict()`` attaches.

        Every ``torch.save(net.state_dict())`` file pickles its OrderedDict with the instance
        attribute ``_metadata``: module prefix -> ``{'version': N}`` (``load_state_dict`` hands
        it to modules that migrate old layouts, e.g. BatchNorm). ``torch.load(weights_only=True)``
        copies any attribute dict onto the OrderedDict; here only that one attribute is taken,
        and only as what torch writes: string keys, one level of dicts, plain scalar values. An
        attribute named after a method (``items``, ``keys``) would otherwise shadow it for the
        code that reads the dict.
        """
        unexpected = [key for key in state if not _is_str(key, "_metadata")]
        if unexpected:
            raise _Corrupt(
                f"BUILD sets attribute {_shown(repr(unexpected[0]))} on an OrderedDict "
                "(only a state dict's _metadata is accepted)"
            )
        metadata = state["_metadata"]
        if type(metadata) not in (dict, collections.OrderedDict):
            raise _Corrupt(f"state-dict _metadata is a {type(metadata).__name__}, not a dict")
        plain_meta: collections.OrderedDict = collections.OrderedDict()
        for prefix, entry in metadata.items():
            if type(prefix) is not str or type(entry) not in (dict, collections.OrderedDict):
                raise _Corrupt("state-dict _metadata must map module names to dicts")
            for key, value in entry.items():
                if type(key) is not str or type(value) not in (int, float, bool, str, type(None)):
                    raise _Corrupt(
                        f"state-dict _metadata[{_shown(repr(prefix))}] holds a "
                        f"{type(value).__name__}; only plain numbers and strings are accepted"
                    )
            plain_meta[prefix] = dict(entry)
        obj._metadata = plain_meta  # type: ignore[attr-defined]

    # -- foreign stand-ins ------------------------------------------------------------------

    def _make_tf_network(self, *args: Any) -> TFNetwork:
        if args:
            raise _Corrupt("dnnlib.tflib.network.Network takes no constructor arguments")
        network = TFNetwork()
        self.fresh[id(network)] = network
        return network

    def build(self, obj: Any, state: Any) -> None:
        """BUILD: sets an object's state, only for the objects this loader created."""
        if isinstance(obj, dict) and type(obj) in (dict, EasyDict, collections.OrderedDict):
            if state is None or (type(state) is dict and not state):
                return  # what an EasyDict / OrderedDict without instance attributes pickles
            if type(obj) is collections.OrderedDict and type(state) is dict:
                self._build_state_dict_metadata(obj, state)
                return
            raise _Corrupt(f"BUILD with state on a {type(obj).__name__}")
        if self.fresh.pop(id(obj), None) is not obj:
            raise _Corrupt(f"BUILD on a {type(obj).__name__} is not supported")
        if isinstance(obj, TFNetwork):
            if not isinstance(state, dict):
                raise _Corrupt("TF network state is not a dict")
            obj.state = state
        elif isinstance(obj, np.ndarray):
            self._build_array(obj, state)
        elif isinstance(obj, np.dtype):
            self._build_dtype(obj, state)
        else:  # pragma: no cover - fresh only holds the types above
            raise _Corrupt(f"BUILD on a {type(obj).__name__} is not supported")


def _make_size(dims: Any = ()) -> torch.Size:
    return torch.Size(_expect_int_tuple(dims, "torch.Size"))


def _make_device(kind: Any, index: Any = None) -> torch.device:
    if not isinstance(kind, str) or not (index is None or type(index) is int):
        raise _Corrupt("torch.device arguments are malformed")
    return torch.device(kind) if index is None else torch.device(kind, index)


def _make_ordered_dict(*args: Any) -> collections.OrderedDict:
    if len(args) > 1 or (args and not isinstance(args[0], (list, tuple, dict))):
        raise _Corrupt("OrderedDict arguments are malformed")
    return collections.OrderedDict(*args)


def _make_easydict(*args: Any) -> EasyDict:
    if len(args) > 1 or (args and not isinstance(args[0], dict)):
        raise _Corrupt("EasyDict arguments are malformed")
    return EasyDict(*args)


def _make_set(items: Any = ()) -> set:
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise _Corrupt("set() argument is not a container")
    return set(items)


def _make_frozenset(items: Any = ()) -> frozenset:
    return frozenset(_make_set(items))


def _make_bytearray(data: Any = b"", *rest: Any) -> bytearray:
    # bytearray(n) with an integer would allocate n bytes: only accept the data itself.
    if isinstance(data, str) and len(rest) == 1 and rest[0] in ("latin1", "latin-1"):
        return bytearray(data.encode("latin-1"))
    if not isinstance(data, (bytes, bytearray)) or rest:
        raise _Corrupt("bytearray() argument is not bytes")
    return bytearray(data)


def _make_complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
    if not all(type(v) in (int, float) for v in (real, imag)):
        raise _Corrupt("complex() arguments are not numbers")
    return complex(real, imag)


def _codecs_encode(text: Any, encoding: Any = "utf-8", *rest: Any) -> bytes:
    # Protocol <= 2 pickles write bytes as _codecs.encode(str, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or rest:
        raise _Corrupt("_codecs.encode is only supported as encode(str, 'latin1')")
    return text.encode("latin-1")


def _copyreg_newobj(cls: Any, *args: Any) -> Any:
    if not isinstance(cls, _Callable) or not cls.newobj:
        raise _Corrupt(f"copyreg.__newobj__ of a {type(cls).__name__} is not supported")
    return cls.fn(*args)


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    # The original executes meta['module_src']; we keep it as a string, unread.
    if not isinstance(meta, dict) or not _is_str(meta.get("type"), "class"):
        raise _Corrupt("persistence meta is not a {'type': 'class', ...} dict")
    if not isinstance(meta.get("class_name"), str):
        raise _Corrupt("persistence meta has no class_name")
    return PersistentObject(meta)


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
            result = loader.load_legacy(data)
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
