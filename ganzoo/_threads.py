"""How many CPU threads torch uses for ganzoo's long commands.

``--threads N`` wins, then ``GANZOO_THREADS``, else the cores idle when the command starts: the
machine's idle share over a tenth of a second (``/proc/stat``), in cores, rounded, at least one and
at most the usable cores (the process's CPU affinity). On a quiet machine that is every core;
where other jobs keep cores busy, torch's worker threads would wait on each other behind them
(2 threads beside one busy job on 2 cores: 7.5 img/s against 41 with 1 thread,
``scripts/bench_threads.py``; README, "Threads"), so fewer threads run faster there. The
1-minute load average, where there is no ``/proc/stat``, is the fallback: it also counts what
this user's previous command did, so it is a worse guess.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ganzoo.errors import GanzooError

THREADS_ENV = "GANZOO_THREADS"


@dataclass(frozen=True)
class Threads:
    """The thread count chosen and why (``run.json`` records both)."""

    count: int
    reason: str

    def to_dict(self) -> dict:
        return {"count": self.count, "from": self.reason}


def usable_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return max(os.cpu_count() or 1, 1)


def load_average() -> float | None:
    """The 1-minute load average, or None where the system has none."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def _cpu_times() -> tuple[int, int, int] | None:
    """``(busy, total, cpus)`` jiffies of the machine since boot, from ``/proc/stat``."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    fields = [int(v) for v in lines[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return total - idle, total, max(cpus, 1)


def idle_cores(seconds: float = 0.1) -> float | None:
    """How many of the machine's cores were idle over the next ``seconds``, or None where the
    system does not say (no ``/proc/stat``)."""
    import time

    before = _cpu_times()
    if before is None:
        return None
    time.sleep(seconds)
    after = _cpu_times()
    if after is None or after[1] <= before[1]:
        return None
    busy = (after[0] - before[0]) / (after[1] - before[1])
    return (1.0 - busy) * after[2]


def _count(text: str, what: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        value = 0
    if value < 1:
        raise GanzooError(f"{what}: give a number of threads of at least 1, not {text!r}")
    return value


def choose_threads(requested: int | None = None) -> Threads:
    """The thread count for a command: ``requested`` (``--threads``), else ``GANZOO_THREADS``,
    else the cores idle now (see the module docstring).

    Raises:
        GanzooError: a count below 1 (one line naming where it came from).
    """
    if requested is not None:
        return Threads(_count(requested, "--threads"), "--threads")
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        return Threads(_count(env, THREADS_ENV), THREADS_ENV)
    cores = usable_cores()
    idle = idle_cores()
    if idle is not None:
        count = min(max(int(round(idle)), 1), cores)
        return Threads(count, f"cores idle at start: {idle:.1f} of {cores} usable")
    load = load_average()
    if load is None:
        return Threads(cores, f"{cores} usable cores (no load figures here)")
    count = min(max(cores - int(round(load)), 1), cores)
    return Threads(count, f"cores idle at start: {cores} usable, load average {load:.2f}")


def use_threads(threads: Threads) -> int:
    """Sets torch's intra-op thread count; returns the count torch reports."""
    import torch

    torch.set_num_threads(threads.count)
    return torch.get_num_threads()
