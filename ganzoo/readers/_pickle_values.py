"""What the restricted unpickler (:mod:`ganzoo.readers.safe_pickle`) builds besides plain data.

The stand-ins for the network objects of foreign code bases (:class:`PersistentObject`,
:class:`TFNetwork`), which only hold the pickled state; the internal tokens and storage records
of the allowed torch globals; and the checks and one-line messages for values read from a file.
"""

from __future__ import annotations

from typing import Any

import torch

from ganzoo.readers._pickle_machine import _Corrupt

MAX_TENSOR_DIMS = 64


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


# --------------------------------------------------------------------------------------------
# Checks and messages for values read from a file
# --------------------------------------------------------------------------------------------


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
