"""The opcode interpreter behind :mod:`ganzoo.readers.safe_pickle`.

A pickle is a small stack program. :class:`_Machine` runs its data opcodes itself and hands every
opcode that could reach code (GLOBAL, STACK_GLOBAL, INST, OBJ, REDUCE, NEWOBJ, NEWOBJ_EX, BUILD,
EXT*) to the loader of ``safe_pickle``, which answers only from its allow-list. Nothing here
imports or calls anything the file names.
"""

from __future__ import annotations

import codecs
import collections
import struct
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ganzoo.readers.safe_pickle import _Loader

MAX_NESTING = 256  # containers inside containers, and open MARKs while unpickling
MAX_STACK_ITEMS = 1_000_000  # items on the unpickler stack (pickle writes lists in batches of 1000)


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a dict whose items can also be read as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _Corrupt(Exception):
    """Internal: the byte stream is not a well-formed pickle (turned into ConversionError)."""


class _Callable:
    """An allow-listed global that the pickle may call (REDUCE) or instantiate (NEWOBJ)."""

    __slots__ = ("qualname", "fn", "newobj")

    def __init__(self, qualname: str, fn: Callable[..., Any], newobj: bool = False) -> None:
        self.qualname = qualname
        self.fn = fn
        self.newobj = newobj

    def __repr__(self) -> str:
        return f"<allowed global {self.qualname}>"


class _Machine:
    """Executes one pickle's opcodes over ``data``, using only the loader's allow-list.

    Written from the pickle format description (``pickletools``); it supports every data opcode
    of protocols 0-5 and routes every opcode that can reach code (GLOBAL, STACK_GLOBAL, INST,
    OBJ, REDUCE, NEWOBJ, NEWOBJ_EX, BUILD, EXT*) through the loader.
    """

    def __init__(
        self,
        loader: _Loader,
        data: bytes,
        persistent_load: Callable[[Any, int], Any] | None = None,
    ) -> None:
        self.loader = loader
        self.data = data
        self.pos = 0
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.persistent_load = persistent_load

    # -- reading ----------------------------------------------------------------------------

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise _Corrupt(f"unexpected end of data at offset {len(self.data)}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, fmt: str, size: int) -> Any:
        return struct.unpack(fmt, self.take(size))[0]

    def line(self) -> str:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise _Corrupt(f"unexpected end of data at offset {len(self.data)}")
        raw = self.data[self.pos : end]
        self.pos = end + 1
        return raw.decode("utf-8")

    # -- stack helpers --------------------------------------------------------------------

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise _Corrupt(f"missing MARK before offset {self.pos - 1}")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def pop(self) -> Any:
        if not self.stack:
            raise _Corrupt(f"stack underflow at offset {self.pos - 1}")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise _Corrupt(f"stack underflow at offset {self.pos - 1}")
        return self.stack[-1]

    # -- the loop ---------------------------------------------------------------------------

    def run(self, start: int) -> tuple[Any, int]:
        """Runs the pickle starting at ``start``; returns its value and the offset after STOP."""
        self.pos = start
        data = self.data
        size = len(data)
        table = _DISPATCH
        while True:
            if self.pos >= size:
                raise _Corrupt(f"unexpected end of data at offset {size}")
            code = data[self.pos]
            self.pos += 1
            handler = table[code]
            if handler is None:
                raise _Corrupt(f"unknown opcode 0x{code:02x} at offset {self.pos - 1}")
            if handler(self):
                if self.metastack or len(self.stack) != 1:
                    raise _Corrupt("STOP with an unbalanced stack")
                return self.stack[0], self.pos
            if len(self.stack) > MAX_STACK_ITEMS:
                raise self.loader.unsafe(
                    f"refused: more than {MAX_STACK_ITEMS:,} items on the unpickler stack"
                )

    # -- opcodes ----------------------------------------------------------------------------

    def op_proto(self) -> None:
        if self.take(1)[0] > 5:
            raise _Corrupt("unsupported pickle protocol")

    def op_frame(self) -> None:
        self.unpack("<Q", 8)  # frames are an I/O hint; the data is already in memory

    def op_stop(self) -> bool:
        return True

    def op_mark(self) -> None:
        if len(self.metastack) >= MAX_NESTING:
            raise self.loader.unsafe(f"refused: containers nested deeper than {MAX_NESTING}")
        self.metastack.append(self.stack)
        self.stack = []

    def op_pop(self) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self.pop_mark()

    def op_pop_mark(self) -> None:
        self.pop_mark()

    def op_dup(self) -> None:
        self.stack.append(self.top())

    # numbers
    def op_int(self) -> None:
        text = self.line()
        if text == "00":
            self.stack.append(False)
        elif text == "01":
            self.stack.append(True)
        else:
            self.stack.append(int(text))

    def op_long(self) -> None:
        self.stack.append(int(self.line().rstrip("L")))

    def op_binint(self) -> None:
        self.stack.append(self.unpack("<i", 4))

    def op_binint1(self) -> None:
        self.stack.append(self.take(1)[0])

    def op_binint2(self) -> None:
        self.stack.append(self.unpack("<H", 2))

    def op_long1(self) -> None:
        n = self.take(1)[0]
        self.stack.append(int.from_bytes(self.take(n), "little", signed=True))

    def op_long4(self) -> None:
        n = self.unpack("<i", 4)
        self.stack.append(int.from_bytes(self.take(n), "little", signed=True))

    def op_float(self) -> None:
        self.stack.append(float(self.line()))

    def op_binfloat(self) -> None:
        self.stack.append(self.unpack(">d", 8))

    def op_none(self) -> None:
        self.stack.append(None)

    def op_true(self) -> None:
        self.stack.append(True)

    def op_false(self) -> None:
        self.stack.append(False)

    # strings and bytes
    def op_string(self) -> None:
        text = self.line()
        if len(text) < 2 or text[0] != text[-1] or text[0] not in "'\"":
            raise _Corrupt("malformed STRING opcode")
        raw, _ = codecs.escape_decode(text[1:-1].encode("ascii"))
        self.stack.append(raw.decode("ascii"))

    def op_binstring(self) -> None:
        self.stack.append(self.take(self.unpack("<i", 4)).decode("ascii"))

    def op_short_binstring(self) -> None:
        self.stack.append(self.take(self.take(1)[0]).decode("ascii"))

    def op_unicode(self) -> None:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise _Corrupt(f"unexpected end of data at offset {len(self.data)}")
        raw = self.data[self.pos : end]
        self.pos = end + 1
        self.stack.append(raw.decode("raw-unicode-escape"))

    def op_binunicode(self) -> None:
        self.stack.append(self.take(self.unpack("<I", 4)).decode("utf-8", "surrogatepass"))

    def op_short_binunicode(self) -> None:
        self.stack.append(self.take(self.take(1)[0]).decode("utf-8", "surrogatepass"))

    def op_binunicode8(self) -> None:
        self.stack.append(self.take(self.unpack("<Q", 8)).decode("utf-8", "surrogatepass"))

    def op_binbytes(self) -> None:
        self.stack.append(self.take(self.unpack("<I", 4)))

    def op_short_binbytes(self) -> None:
        self.stack.append(self.take(self.take(1)[0]))

    def op_binbytes8(self) -> None:
        self.stack.append(self.take(self.unpack("<Q", 8)))

    def op_bytearray8(self) -> None:
        self.stack.append(bytearray(self.take(self.unpack("<Q", 8))))

    def op_buffer(self) -> None:
        raise _Corrupt("out-of-band buffers (pickle protocol 5) are not supported")

    # containers
    def op_empty_list(self) -> None:
        self.stack.append([])

    def op_list(self) -> None:
        items = self.pop_mark()  # before touching self.stack: pop_mark replaces it
        self.stack.append(items)

    def op_append(self) -> None:
        value = self.pop()
        target = self.top()
        if type(target) is not list:
            raise _Corrupt(f"APPEND to a {type(target).__name__}")
        target.append(value)

    def op_appends(self) -> None:
        items = self.pop_mark()
        target = self.top()
        if type(target) is not list:
            raise _Corrupt(f"APPENDS to a {type(target).__name__}")
        target.extend(items)

    def op_empty_tuple(self) -> None:
        self.stack.append(())

    def op_tuple(self) -> None:
        items = self.loader.tracked_tuple(self.pop_mark())
        self.stack.append(items)

    def op_tuple1(self) -> None:
        self.stack.append(self.loader.tracked_tuple((self.pop(),)))

    def op_tuple2(self) -> None:
        b = self.pop()
        a = self.pop()
        self.stack.append(self.loader.tracked_tuple((a, b)))

    def op_tuple3(self) -> None:
        c = self.pop()
        b = self.pop()
        a = self.pop()
        self.stack.append(self.loader.tracked_tuple((a, b, c)))

    def op_empty_dict(self) -> None:
        self.stack.append({})

    def op_dict(self) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise _Corrupt("DICT with an odd number of items")
        self.stack.append(dict(zip(items[::2], items[1::2])))

    def _target_dict(self) -> dict:
        target = self.top()
        # Only real dicts (and the dict subclasses built here) take items: on other objects
        # pickle would call an arbitrary __setitem__.
        if type(target) not in (dict, EasyDict, collections.OrderedDict):
            raise _Corrupt(f"SETITEM on a {type(target).__name__}")
        return target

    def op_setitem(self) -> None:
        value = self.pop()
        key = self.pop()
        self._target_dict()[key] = value

    def op_setitems(self) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise _Corrupt("SETITEMS with an odd number of items")
        target = self._target_dict()
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def op_empty_set(self) -> None:
        self.stack.append(set())

    def op_additems(self) -> None:
        items = self.pop_mark()
        target = self.top()
        if type(target) is not set:
            raise _Corrupt(f"ADDITEMS to a {type(target).__name__}")
        target.update(items)

    def op_frozenset(self) -> None:
        items = frozenset(self.pop_mark())
        self.stack.append(items)

    # memo
    def _get(self, key: int) -> None:
        try:
            self.stack.append(self.memo[key])
        except KeyError:
            raise _Corrupt(f"memo key {key} is not defined") from None

    def _put(self, key: int) -> None:
        if key < 0:
            raise _Corrupt("negative memo key")
        self.memo[key] = self.top()

    def op_get(self) -> None:
        self._get(int(self.line()))

    def op_binget(self) -> None:
        self._get(self.take(1)[0])

    def op_long_binget(self) -> None:
        self._get(self.unpack("<I", 4))

    def op_put(self) -> None:
        self._put(int(self.line()))

    def op_binput(self) -> None:
        self._put(self.take(1)[0])

    def op_long_binput(self) -> None:
        self._put(self.unpack("<I", 4))

    def op_memoize(self) -> None:
        self._put(len(self.memo))

    # globals and calls: everything that could run code goes through the loader
    def op_global(self) -> None:
        module = self.line()
        name = self.line()
        self.stack.append(self.loader.resolve(module, name))

    def op_stack_global(self) -> None:
        name = self.pop()
        module = self.pop()
        if not isinstance(module, str) or not isinstance(name, str):
            raise _Corrupt("STACK_GLOBAL needs two strings")
        self.stack.append(self.loader.resolve(module, name))

    def op_ext(self) -> None:
        raise self.loader.unsafe("refused: the pickle uses the copyreg extension registry")

    def _call(self, func: Any, args: Any, *, newobj: bool) -> None:
        if not isinstance(func, _Callable) or (newobj and not func.newobj):
            raise _Corrupt(f"cannot call a {type(func).__name__} at offset {self.pos - 1}")
        if not isinstance(args, tuple):
            raise _Corrupt("call arguments are not a tuple")
        self.stack.append(func.fn(*args))

    def op_reduce(self) -> None:
        args = self.pop()
        func = self.pop()
        self._call(func, args, newobj=False)

    def op_newobj(self) -> None:
        args = self.pop()
        cls = self.pop()
        self._call(cls, args, newobj=True)

    def op_newobj_ex(self) -> None:
        kwargs = self.pop()
        args = self.pop()
        cls = self.pop()
        if kwargs:
            raise _Corrupt("NEWOBJ_EX with keyword arguments is not supported")
        self._call(cls, args, newobj=True)

    def op_inst(self) -> None:
        module = self.line()
        name = self.line()
        cls = self.loader.resolve(module, name)
        self._call(cls, tuple(self.pop_mark()), newobj=False)

    def op_obj(self) -> None:
        items = self.pop_mark()
        if not items:
            raise _Corrupt("OBJ without a class")
        self._call(items[0], tuple(items[1:]), newobj=False)

    def op_build(self) -> None:
        state = self.pop()
        self.loader.build(self.top(), state)

    def op_persid(self) -> None:
        self._persistent(self.line())

    def op_binpersid(self) -> None:
        self._persistent(self.pop())

    def _persistent(self, pid: Any) -> None:
        if self.persistent_load is None:
            raise _Corrupt("persistent id in a plain pickle (is this a torch file?)")
        self.stack.append(self.persistent_load(pid, self.pos))


def _dispatch_table() -> list[Callable[[_Machine], Any] | None]:
    m = _Machine
    ops = {
        b"\x80": m.op_proto, b"\x95": m.op_frame, b".": m.op_stop, b"(": m.op_mark,
        b"0": m.op_pop, b"1": m.op_pop_mark, b"2": m.op_dup,
        b"I": m.op_int, b"L": m.op_long, b"J": m.op_binint, b"K": m.op_binint1,
        b"M": m.op_binint2, b"\x8a": m.op_long1, b"\x8b": m.op_long4, b"F": m.op_float,
        b"G": m.op_binfloat, b"N": m.op_none, b"\x88": m.op_true, b"\x89": m.op_false,
        b"S": m.op_string, b"T": m.op_binstring, b"U": m.op_short_binstring,
        b"V": m.op_unicode, b"X": m.op_binunicode, b"\x8c": m.op_short_binunicode,
        b"\x8d": m.op_binunicode8, b"B": m.op_binbytes, b"C": m.op_short_binbytes,
        b"\x8e": m.op_binbytes8, b"\x96": m.op_bytearray8, b"\x97": m.op_buffer,
        b"\x98": m.op_buffer,
        b"]": m.op_empty_list, b"l": m.op_list, b"a": m.op_append, b"e": m.op_appends,
        b")": m.op_empty_tuple, b"t": m.op_tuple, b"\x85": m.op_tuple1,
        b"\x86": m.op_tuple2, b"\x87": m.op_tuple3, b"}": m.op_empty_dict, b"d": m.op_dict,
        b"s": m.op_setitem, b"u": m.op_setitems, b"\x8f": m.op_empty_set,
        b"\x90": m.op_additems, b"\x91": m.op_frozenset,
        b"g": m.op_get, b"h": m.op_binget, b"j": m.op_long_binget, b"p": m.op_put,
        b"q": m.op_binput, b"r": m.op_long_binput, b"\x94": m.op_memoize,
        b"c": m.op_global, b"\x93": m.op_stack_global, b"\x82": m.op_ext, b"\x83": m.op_ext,
        b"\x84": m.op_ext, b"R": m.op_reduce, b"\x81": m.op_newobj, b"\x92": m.op_newobj_ex,
        b"i": m.op_inst, b"o": m.op_obj, b"b": m.op_build, b"P": m.op_persid,
        b"Q": m.op_binpersid,
    }  # fmt: skip
    table: list[Callable[[_Machine], Any] | None] = [None] * 256
    for code, handler in ops.items():
        table[code[0]] = handler
    return table


_DISPATCH = _dispatch_table()
