"""The consoles every human-readable line of ganzoo goes through, library and command line alike.

``stdout`` carries a command's report and its progress; ``stderr`` carries notes, warnings and
errors. The command line silences ``stdout`` for ``--json -`` (the JSON is then all that stdout
holds), and that silences the library's progress with it. Both follow ``sys.stdout`` /
``sys.stderr`` as they are when a line is printed (rich looks them up on each write).
"""

from __future__ import annotations

from rich.console import Console

stdout = Console()
stderr = Console(stderr=True, emoji=False)  # ":x" in a device name is text, not an emoji


def line(console: Console, text: str) -> None:
    """One plain line: no markup, no highlighting, never wrapped (paths are copied from it)."""
    console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)


def note(text: str) -> None:
    """A line of the library's own on stderr (what a run keeps, how to continue it)."""
    line(stderr, text)
