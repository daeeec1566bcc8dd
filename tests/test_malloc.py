"""ganzoo._malloc: freed memory stays in the process (glibc on Linux), where ganzoo asks for it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# A child process allocates, fills and frees a 64 MiB buffer in rounds and prints the page faults
# of the last 5. Each round maps 16384 fresh 4 KiB pages unless freed memory is kept (glibc takes
# a few rounds to settle on reusing the block, so 10 rounds come first, as a training loop's
# first steps).
_CHILD = textwrap.dedent(
    """
    import resource, sys
    import torch
    from ganzoo._malloc import keep_freed_memory
    kept = keep_freed_memory() if sys.argv[1] == "keep" else False
    def round_():
        buf = torch.empty(16 * 1024 * 1024)  # 64 MiB of float32
        buf.fill_(1.0)
        del buf
    for _ in range(10):
        round_()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        round_()
    print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _pages_per_round() -> int:
    """Pages a fresh 64 MiB mapping faults in: 2 MiB ones where transparent huge pages are on for
    every mapping, else the base page size."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled", encoding="ascii") as f:
            huge = "[always]" in f.read()
    except OSError:
        huge = False
    return 64 * 1024 * 1024 // (2 * 1024 * 1024 if huge else os.sysconf("SC_PAGE_SIZE"))


_PAGES_PER_ROUND = _pages_per_round()


def _child(mode: str, **env: str) -> tuple[bool, int]:
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True,
        env={**os.environ, **env}, timeout=120,
    )  # fmt: skip
    kept, faults = run.stdout.split()
    return kept == "True", int(faults)


def test_kept_memory_is_reused_without_page_faults():
    assert sys.platform.startswith("linux")  # the platform CI runs on; elsewhere it is a no-op
    kept, faults = _child("keep")
    assert kept
    assert faults < _PAGES_PER_ROUND // 4  # the same block again: its pages are already there
    _, default_faults = _child("system")
    assert default_faults > 4 * _PAGES_PER_ROUND  # glibc's default: mapped anew every round


def test_opt_out_leaves_the_allocator_alone():
    kept, faults = _child("keep", GANZOO_MALLOC="system")
    assert not kept
    assert faults > 4 * _PAGES_PER_ROUND

