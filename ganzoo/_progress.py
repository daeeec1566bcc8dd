"""Progress that people can read in a terminal and in a log.

On a terminal, ganzoo's long commands draw a rich progress bar. Where the output is not a
terminal (a batch job's log, ``| tee log``, a CI console), a bar is useless: rich would print it
once, cut at 80 columns. There :class:`LineProgress` stands in for :class:`rich.progress.Progress`
and prints one plain line per tick instead, e.g.::

    finetune: 8.19/100 kimg (8%)  85.3 img/s  loss_G 1.234  loss_D 0.567  r_t 0.600  p 0.012  ETA 0:17:57

:func:`progress` picks one of the two for a console; both take the same calls (``add_task``,
``update``, ``advance``, ``start``/``stop`` or ``with``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from ganzoo import _console


def is_terminal(console: Console) -> bool:
    """Whether ``console`` writes to a terminal (rich's answer: honours ``TTY_COMPATIBLE`` and
    ``FORCE_COLOR``)."""
    return bool(console.is_terminal)


def duration(seconds: float) -> str:
    """``h:mm:ss``, as rich shows times."""
    seconds = max(int(round(seconds)), 0)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.3f}".rstrip("0")


def _bytes(value: float) -> str:
    from rich.filesize import decimal

    return decimal(int(value))


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    fields: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    start_completed: float = 0.0
    last_line: float = field(default_factory=time.monotonic)
    printed: float | None = None  # ``completed`` at the last line
    next_fraction: float = 0.0
    finished: bool = False


class LineProgress:
    """A stand-in for :class:`rich.progress.Progress` that prints plain lines, never a bar.

    A task prints a line when ``update(..., tick=True)`` is called (the training loop's ticks),
    every ``every`` of its total (e.g. 0.1: at 10 %, 20 %, ...), after ``seconds`` without a line,
    and when it completes; ``every=None, seconds=None`` prints only on ticks. Each line holds the
    description, ``completed/total unit`` with the percentage, the task's text fields (in the
    order given; a non-empty ``rate`` field, else the measured rate in ``rate_unit``) and the
    ETA (``done in`` once complete). Lines are never wrapped or cut at the console width.
    """

    def __init__(self, console: Console | None = None, *, unit: str = "", rate_unit: str | None = None,
                 every: float | None = 0.1, seconds: float | None = 30.0, disable: bool = False,
                 **_ignored: Any) -> None:  # fmt: skip
        self.console = console or _console.stdout
        self.unit = unit
        self.rate_unit = rate_unit
        self.every = every
        self.seconds = seconds
        self.disable = disable
        self._tasks: dict[int, _Task] = {}

    # The rich.progress.Progress calls ganzoo makes -----------------------------------------------

    def __enter__(self) -> "LineProgress":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        """Prints the last state of tasks left unfinished (stopped early, or of unknown total)."""
        for task in self._tasks.values():
            if not task.finished and task.printed != task.completed and task.completed > task.start_completed:
                self._line(task)

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **fields: Any) -> int:
        task_id = len(self._tasks)
        self._tasks[task_id] = _Task(description, total, float(completed), dict(fields), start_completed=float(completed))
        task = self._tasks[task_id]
        if task.total and self.every:
            task.next_fraction = (math.floor(task.completed / task.total / self.every) + 1) * self.every
        return task_id

    def update(self, task_id: int, *, total: float | None = None, completed: float | None = None,
               advance: float | None = None, description: str | None = None, tick: bool = False,
               **fields: Any) -> None:  # fmt: skip
        task = self._tasks[task_id]
        if total is not None:
            task.total = total
        if description is not None:
            task.description = description
        if completed is not None:
            task.completed = float(completed)
        if advance is not None:
            task.completed += advance
        task.fields.update(fields)
        self._maybe_line(task, tick)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    # Lines ------------------------------------------------------------------------------------

    def _maybe_line(self, task: _Task, tick: bool) -> None:
        if self.disable or task.finished:
            return
        auto = self.every is not None or self.seconds is not None
        complete = task.total is not None and task.completed >= task.total
        if tick or (auto and complete):
            task.finished = complete and auto
            self._line(task)
            return
        if task.total and self.every and task.completed / task.total >= task.next_fraction:
            self._line(task)
        elif self.seconds is not None and time.monotonic() - task.last_line >= self.seconds:
            self._line(task)
        if task.total and self.every:
            task.next_fraction = (math.floor(task.completed / task.total / self.every) + 1) * self.every

    def rate(self, task: _Task) -> float | None:
        elapsed = time.monotonic() - task.started
        done = task.completed - task.start_completed
        return done / elapsed if elapsed > 0 and done > 0 else None

    def format(self, task: _Task) -> str:
        fmt = _bytes if self.unit == "bytes" else _number
        unit = "" if self.unit == "bytes" else f" {self.unit}" if self.unit else ""
        count = fmt(task.completed) + (f"/{fmt(task.total)}" if task.total else "") + unit
        if task.total:
            count += f" ({100 * min(task.completed / task.total, 1):.0f}%)"
        parts = [f"{task.description}: {count}" if task.description else count]
        rate = self.rate(task)
        if not str(task.fields.get("rate") or "").strip() and self.rate_unit and rate:  # else the caller's rate
            parts.append(f"{_bytes(rate)}/s" if self.unit == "bytes" else f"{rate:,.1f} {self.rate_unit}")
        parts += [str(value) for value in task.fields.values() if isinstance(value, str) and value.strip()]
        if task.total is not None and task.completed >= task.total:
            parts.append(f"done in {duration(time.monotonic() - task.started)}")
        elif task.total and rate:
            parts.append(f"ETA {duration((task.total - task.completed) / rate)}")
        return "  ".join(parts)

    def _line(self, task: _Task) -> None:
        task.last_line = time.monotonic()
        task.printed = task.completed
        if not self.disable:
            self.console.print(self.format(task), markup=False, highlight=False, soft_wrap=True)


#: Seconds between the plain lines of a long command whose output is not a terminal, when nothing
#: else printed one (default 30; the environment variable sets it, e.g. for a terse log).
LINE_SECONDS_ENV = "GANZOO_PROGRESS_SECONDS"


def line_seconds() -> float:
    """The longest silence between plain progress lines (:data:`LINE_SECONDS_ENV`, else 30 s)."""
    import os

    from ganzoo.errors import GanzooError

    text = os.environ.get(LINE_SECONDS_ENV, "").strip()
    if not text:
        return 30.0
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise GanzooError(f"{LINE_SECONDS_ENV}={text!r}: give a number of seconds above 0")
    return value


def progress(*columns: Any, console: Console | None = None, unit: str = "", rate_unit: str | None = None,
             every: float | None = 0.1, **kwargs: Any):  # fmt: skip
    """A rich :class:`~rich.progress.Progress` with ``columns`` on a terminal, else a
    :class:`LineProgress` printing to the same console (``unit``, ``rate_unit`` and ``every``
    set its lines, and a line comes at least every :func:`line_seconds`; ``kwargs`` such as
    ``disable`` go to either)."""
    console = console or _console.stdout
    if is_terminal(console):
        from rich.progress import Progress

        return Progress(*columns, console=console, **kwargs)
    kwargs.pop("transient", None)
    return LineProgress(console, unit=unit, rate_unit=rate_unit, every=every, seconds=line_seconds(), **kwargs)
