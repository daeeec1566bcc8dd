"""Zero-copy reading of safetensors files into CPU tensors.

``safetensors.torch.load_file`` is correct but spends ~7 µs per tensor slicing storages; a
StyleGAN2 checkpoint has ~300 small tensors per network. Here the whole file is mapped once
(copy-on-write, pages are read lazily) and every tensor is a view into that one mapping. The
header is validated as strictly as the format allows; files are written with
:func:`ganzoo._safetensors_write.save_file` (``safetensors``' writer, metadata keys sorted).
"""

from __future__ import annotations

import json
import math
import os
import struct

import torch

from ganzoo.errors import CheckpointError

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}  # fmt: skip
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # the format's own limit


def load_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Reads a safetensors file as name -> tensor views of one read-only-on-disk mapping.

    Raises:
        CheckpointError: the file is truncated or its header is malformed (one line, names the file).
    """
    path = os.fspath(path)
    size = os.path.getsize(path)

    def bad(problem: str) -> CheckpointError:
        return CheckpointError(f"{path}: invalid safetensors file ({problem})")

    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise bad("shorter than its 8-byte header length")
        header_len = struct.unpack("<Q", prefix)[0]
        if header_len > min(_MAX_HEADER_BYTES, size - 8):
            raise bad(f"header length {header_len} exceeds the file")
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise bad(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    data_start = 8 + header_len
    data_len = size - data_start
    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = _DTYPES[info["dtype"]]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise bad(f"tensor {name!r} has a malformed entry") from None
        itemsize = torch.empty(0, dtype=dtype).element_size()
        if any(d < 0 for d in shape) or not 0 <= begin <= end <= data_len:
            raise bad(f"tensor {name!r} lies outside the data")
        if math.prod(shape) * itemsize != end - begin:
            raise bad(f"tensor {name!r}: shape {shape} does not match its {end - begin} bytes")
        entries.append((begin, end, name, dtype, shape, itemsize))
    entries.sort()
    for (_, prev_end, prev, *_), (begin, _, name, *_) in zip(entries, entries[1:]):
        if begin < prev_end:
            raise bad(f"tensors {prev!r} and {name!r} overlap")
    if not entries:
        return {}
    storage = torch.UntypedStorage.from_file(path, shared=False, nbytes=size)
    flat = torch.empty(0, dtype=torch.uint8).set_(storage)
    tensors = {}
    for begin, end, name, dtype, shape, itemsize in entries:
        offset = data_start + begin
        if offset % itemsize:  # not aligned for a view: copy this one tensor
            tensors[name] = flat[offset : data_start + end].clone().view(dtype).reshape(shape)
        else:
            tensors[name] = flat[offset : data_start + end].view(dtype).reshape(shape)
    return tensors
