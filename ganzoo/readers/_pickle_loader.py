"""The allow-list of the restricted unpickler (:mod:`ganzoo.readers.safe_pickle`).

:class:`_Loader` answers the pickle machine (:mod:`ganzoo.readers._pickle_machine`) for every
opcode that could reach code: each global a file names is looked up in the allow-list and
replaced by a callable written here (tensor and array rebuilders that check their inputs, plain
containers, inert stand-ins for the network objects); BUILD sets state only on the objects this
loader created. Tensors, arrays and storages count against an allocation budget of a few times
the file's size.
"""

from __future__ import annotations

import collections
import math
import re
from typing import Any, Callable, Iterable

import numpy as np
import torch

from ganzoo.errors import ConversionError, UnsafeCheckpointError
from ganzoo.readers._pickle_machine import MAX_NESTING, EasyDict, _Callable, _Corrupt
from ganzoo.readers._pickle_values import (
    PersistentObject,
    TFNetwork,
    _ScannedTensor,
    _StorageRef,
    _StorageType,
    _Token,
    _count,
    _element_size,
    _expect_int,
    _expect_int_tuple,
    _is_str,
    _shown,
)
from ganzoo.readers._torch_legacy import load_legacy

# Real checkpoints need about as many bytes of tensors as the file holds; pickle bombs far more.
ALLOCATION_FACTOR = 4  # tensors/arrays/storages may need at most this many times the file size ...
ALLOCATION_SLACK = 1 << 20  # ... plus this many bytes

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
        they are parsed like any other legacy torch file (:func:`ganzoo.readers._torch_legacy.load_legacy`).
        """
        if not isinstance(blob, (bytes, bytearray)):
            raise _Corrupt("_load_from_bytes expects bytes")
        if self.legacy_depth:
            raise self.unsafe("refused: a storage embedded in an embedded storage")
        self.legacy_depth += 1
        try:
            storage = load_legacy(self, bytes(blob), inner=True)
        finally:
            self.legacy_depth -= 1
        if not isinstance(storage, _StorageRef):
            raise _Corrupt("_load_from_bytes data does not hold a storage")
        return storage

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
