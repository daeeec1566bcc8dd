"""What every command shares: the one console, the option conventions, JSON output, and the one
way warnings and errors are printed.

* Human output goes through :data:`console` (stdout); warnings, errors and questions through
  :data:`err_console` (stderr). Nothing else in :mod:`ganzoo.cli` makes a console.
* ``--json PATH`` (:func:`json_option`, :func:`json_output`) means the same in every command: the
  machine-readable result is written to ``PATH`` (a ``.json`` file, checked before the work and
  written atomically), and ``--json -`` prints it to stdout instead, with nothing else there
  (the console goes quiet; warnings and errors stay on stderr).
* A warning is one line on stderr, ``warning: ...``: Python warnings raised by library code while a
  command runs (:func:`routed_warnings`, installed by :func:`ganzoo.cli.main` around every
  command) and the command line's own (:func:`warn`) alike, each message once per command.
* An error is one line on stderr, ``error: ...`` (:func:`error`).
* An option renamed because its spelling meant something else in another command keeps its old
  spelling as a hidden alias (:func:`old_spelling`) that still works and warns
  (:func:`renamed`).

Nothing here imports torch or huggingface_hub: ``ganzoo list`` loads this module too.
"""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator, Optional

import typer

from ganzoo import _console
from ganzoo.errors import GanzooError

# The library's consoles (ganzoo._console): one stdout, one stderr for everything ganzoo prints.
console = _console.stdout  # human output: stdout
err_console = _console.stderr
_line = _console.line


def say(text: str) -> None:
    """A plain line of human output (no markup, never wrapped: paths are copied from it)."""
    _line(console, text)


def note(text: str) -> None:
    """``note: ...`` on stdout, part of a command's report."""
    _line(console, f"note: {text}")


def wrote(path: Any) -> None:
    """``wrote PATH`` on stdout."""
    _line(console, f"wrote {path}")


def error(message: Any) -> None:
    """``error: ...``, one line on stderr."""
    _line(err_console, f"error: {message}")


# ------------------------------------------------------------------------------------------------
# Warnings: one route for the library's Python warnings and the command line's own

_shown: Optional[set[str]] = None  # messages already shown by the running command

# Categories meant for developers, hidden unless they come from ganzoo itself (a renamed registry
# model is a DeprecationWarning users must see) or the user asked for them with -W/PYTHONWARNINGS.
_DEVELOPER_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def usage_error(message: str) -> None:
    """Refuses a command line whose options are missing or do not go together, as click refuses a
    missing required option: the usage line and ``error: message`` on stderr, exit 2. Called
    first thing in a command, before anything heavy is imported."""
    import importlib

    # The click that typer runs on (its bundled copy, or the click package): where its usage
    # errors and the running command's context live.
    exceptions = sys.modules[typer.BadParameter.__module__]
    context = importlib.import_module(exceptions.__name__.rpartition(".")[0] + ".globals")
    raise exceptions.UsageError(message, context.get_current_context(silent=True))


def warn(message: Any) -> None:
    """``warning: ...``, one line on stderr; a message the running command already showed is not
    repeated."""
    text = " ".join(str(message).split())
    if _shown is not None:
        if text in _shown:
            return
        _shown.add(text)
    _line(err_console, f"warning: {text}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # warnings.showwarning's signature
    warn(message)


@contextlib.contextmanager
def routed_warnings() -> Iterator[None]:
    """Shows every Python warning raised inside as a ``warning: ...`` line on stderr, at once (a
    long command's warning is not held back until its end), each message once."""
    global _shown
    previous, _shown = _shown, set()
    try:
        with warnings.catch_warnings():
            if not sys.warnoptions:  # -W / PYTHONWARNINGS: the user's filters as they are
                warnings.simplefilter("always")  # each message once is warn()'s job, not the registry's
                for category in _DEVELOPER_WARNINGS:
                    warnings.filterwarnings("ignore", category=category)
                warnings.filterwarnings("always", category=DeprecationWarning, module=r"ganzoo(\.|$)")
            warnings.showwarning = _show_warning
            yield
    finally:
        _shown = previous


# ------------------------------------------------------------------------------------------------
# Renamed options


def old_spelling(default: Any, spelling: str, new: str) -> Any:
    """A hidden option: the old spelling of ``new``, which still works (see :func:`renamed`)."""
    return typer.Option(default, spelling, hidden=True, help=f"Old spelling of {new} (deprecated).")


def renamed(command: str, old: str, new: str, old_value: Any, new_value: Any, unset: Any = None) -> Any:
    """The value of option ``new``, or of its old spelling ``old`` with a warning line.

    Raises:
        GanzooError: both were given, with different values.
    """
    if old_value is unset:
        return new_value
    warn(f"{old} is deprecated in {command}; use {new}")
    if new_value is not unset and new_value != old_value:
        raise GanzooError(f"{command}: {old} is the old spelling of {new}; give only {new}")
    return old_value


# ------------------------------------------------------------------------------------------------
# --threads N


def threads_option() -> Any:
    """The ``--threads N`` option of the long commands; apply it with :func:`apply_threads`."""
    return typer.Option(None, "--threads", metavar="N", min=1,
                        help="CPU threads for torch (default: $GANZOO_THREADS, else the cores idle at start).")  # fmt: skip


def apply_threads(requested: Optional[int]) -> Any:
    """Chooses the command's thread count (:func:`ganzoo._threads.choose_threads`) and sets it;
    returns the :class:`~ganzoo._threads.Threads` (training commands record it in ``run.json``)."""
    from ganzoo._threads import choose_threads, use_threads

    threads = choose_threads(requested)
    use_threads(threads)
    return threads


# ------------------------------------------------------------------------------------------------
# --json PATH, --json - (stdout)


def json_option(what: str = "the result") -> Any:
    """The ``--json PATH`` option (``-``: stdout); read its value with :func:`json_output`."""
    return typer.Option(None, "--json", metavar="PATH",
                        help=f"Write {what} as JSON to PATH; '-' prints it to stdout (and nothing else).")  # fmt: skip


class JsonOutput:
    """Where ``--json`` sends the machine-readable result: nowhere, a file, or stdout."""

    def __init__(self, value: Optional[str]) -> None:
        self.value = value
        self.stdout = value == "-"
        self.path = None if value is None or self.stdout else Path(value)

    def __bool__(self) -> bool:
        return self.value is not None

    def write(self, data: Any) -> None:
        """Writes ``data`` (sorted keys, indent 2): atomically to the file (then ``wrote PATH`` on
        the console), or to stdout."""
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        if self.stdout:
            sys.stdout.write(text)
            sys.stdout.flush()
        elif self.path is not None:
            from ganzoo._io import atomic_write_text

            atomic_write_text(self.path, text)
            wrote(self.path)


def json_output(value: Optional[str]) -> JsonOutput:
    """Reads ``--json``'s value before the work: a ``PATH`` must be writable as a ``.json`` file
    (:func:`ganzoo._io.check_output`; an existing file is replaced); with ``-`` the console goes
    quiet for the rest of the command, so stdout holds the JSON only."""
    out = JsonOutput(value)
    if out.path is not None:
        from ganzoo._io import check_output

        check_output(out.path, suffixes=(".json",), overwrite=True)
    if out.stdout:
        console.quiet = True  # main() turns it back on
    return out
