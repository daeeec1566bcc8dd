"""Keeping freed memory in the process for reuse (glibc on Linux), for CPU training and sampling.

Why: glibc serves every allocation above its mmap threshold (at most 32 MiB on 64-bit) with a
fresh ``mmap`` and gives it back with ``munmap`` when freed. Activations of a 256² StyleGAN2
batch are such allocations (``[4, 64, 256, 256]`` float32 is 64 MiB), so every forward and
backward pass maps them anew and the kernel faults in and zeroes every page again: at 256² on
a 2-core machine that is about a tenth of ganzoo's eager training step and nearly a third of the
StyleGAN2-ADA reference's (``scripts/bench_compile.py --malloc keep|system`` times both). Setting ``M_MMAP_MAX`` to 0 (no mmap'ed chunks) and a high
``M_TRIM_THRESHOLD`` (the heap top is not returned to the system) makes freed blocks stay in the
process, and the next step reuses them without page faults. The price is that the resident size
stays at its peak instead of falling between steps, which a training or sampling process reaches
on every step anyway.

This changes the whole process's allocator, so ganzoo does it only where it owns the process's
work: the training loop on CPU and ``ganzoo generate`` (and the benchmark scripts, for every
implementation they time). ``GANZOO_MALLOC=system`` leaves the allocator alone. Elsewhere (other
C libraries, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's <malloc.h>
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1  # the largest value mallopt takes (an int): 2 GiB of free heap top
_OPT_OUT = "GANZOO_MALLOC"


@functools.cache  # once per process: the settings are process-wide
def keep_freed_memory() -> bool:
    """Asks glibc's malloc to keep freed memory for reuse (see the module docstring).

    Returns:
        True when the settings are in effect (now or from an earlier call), False where they do
        not apply: not Linux/glibc, ``GANZOO_MALLOC=system``, or ``mallopt`` refused.
    """
    if os.environ.get(_OPT_OUT, "").strip().lower() == "system":
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success.
    return bool(mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM)) and bool(mallopt(_M_MMAP_MAX, 0))


__all__ = ["keep_freed_memory"]
