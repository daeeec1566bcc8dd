"""The consoles every human-readable line of ganzoo goes through, library and command line alike.

``stdout`` carries a command's report and its progress; ``stderr`` carries notes, warnings and
errors. The command line silences ``stdout`` for ``--json -`` (the JSON is then all that stdout
holds), and that silences the library's progress with it. Both follow ``sys.stdout`` /
``sys.stderr`` as they are when a line is printed (rich looks them up on each write).
"""

from __future__ import annotations

import io

from rich.console import Console

stdout = Console()
stderr = Console(stderr=True, emoji=False)  # ":x" in a device name is text, not an emoji


def line(console: Console, text: str) -> None:
    """One plain line: no markup, no highlighting, never wrapped (paths are copied from it)."""
    console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)


def note(text: str) -> None:
    """A line of the library's own on stderr (what a run keeps, how to continue it)."""
    line(stderr, text)


_interruption_said = False


def note_interruption(text: str) -> None:
    """The line that says what an interrupted run keeps (``interrupted at ...``); the command
    line then adds no bare ``interrupted`` of its own (:func:`interruption_said`)."""
    global _interruption_said
    _interruption_said = True
    note(text)


def interruption_said() -> bool:
    """Whether :func:`note_interruption` spoke since the last call (and forgets it)."""
    global _interruption_said
    said, _interruption_said = _interruption_said, False
    return said


def natural_width(renderable) -> int:
    """How many columns ``renderable`` (a rich table) takes when nothing limits it."""
    from rich.measure import Measurement

    measuring = Console(width=100_000, file=io.StringIO())
    return Measurement.get(measuring, measuring.options, renderable).maximum


def fitted_table(build, optional, width: int | None):
    """The table ``build(left_out)`` makes with as few of the ``optional`` columns left out, in
    that order, as fit in ``width`` columns (all kept when ``width`` is None); returns
    ``(table, left_out)``. The caller names what it left out."""
    left_out: list[str] = []
    for column in [*optional, None]:
        table = build(left_out)
        if width is None or natural_width(table) <= width:
            return table, left_out
        if column is not None:
            left_out.append(column)
    return table, left_out


def print_unfitted(console: Console, table) -> None:
    """Prints ``table`` at its natural width, however wide that is (lines a pipe or ``less -S``
    takes whole), without colour, each line stripped of trailing blanks."""
    rendering = Console(width=natural_width(table), file=io.StringIO(), color_system=None, highlight=False)
    rendering.print(table)
    for text in rendering.file.getvalue().splitlines():
        line(console, text.rstrip())
