"""The ``ganzoo`` command line: parse arguments, call the public API, print with rich.

One module per command group, each thin (parse, call the API, print):

* :mod:`~ganzoo.cli.models`: ``list``, ``info``, ``pull``, ``convert``, ``export``, ``generate``
* :mod:`~ganzoo.cli.hub`: ``push``, ``mirror``
* :mod:`~ganzoo.cli.train`: ``finetune``, ``pretrain``
* :mod:`~ganzoo.cli.evaluate`: ``metrics``, ``rank``
* :mod:`~ganzoo.cli.merge`, :mod:`~ganzoo.cli.synth`: ``merge``, ``synth``
* :mod:`~ganzoo.cli.analyze`, :mod:`~ganzoo.cli.cache`, :mod:`~ganzoo.cli.playground`: the
  ``analyze``, ``cache`` and ``playground`` groups

and :mod:`~ganzoo.cli._common` for what they share: the one console, ``--json PATH`` (``-``:
stdout), renamed options, and warnings and errors as single lines.

Every :class:`ganzoo.errors.GanzooError` becomes one line on stderr and exit code 1; a usage
error (unknown command or option, a missing argument, a value of the wrong type) is the usage
line and one error line, exit code 2 (click's convention). No module here imports torch at import
time: ``ganzoo list`` and ``ganzoo info`` answer in a fraction of a second.
"""

from __future__ import annotations

import functools
import re
import sys

import typer

from ganzoo import _console
from ganzoo.cli import analyze, cache, evaluate, hub, merge, models, playground, synth, train
from ganzoo.cli._common import console, err_console, error, routed_warnings
from ganzoo.errors import GanzooError

__all__ = ["app", "entry_point", "main"]

app = typer.Typer(
    name="ganzoo",
    help="A model zoo and checkpoint hub for pretrained GANs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from ganzoo import __version__

        console.print(f"ganzoo {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """A model zoo and checkpoint hub for pretrained GANs."""


for _group in (models, hub, evaluate, train, merge, synth, analyze, cache, playground):
    _group.register(app)


@app.command()
def version() -> None:
    """Print the ganzoo version."""
    from ganzoo import __version__

    console.print(__version__, highlight=False)


# Value placeholders by annotation: one style in every command's help and usage line.
_METAVARS = {"Path": "PATH", "str": "TEXT", "int": "INTEGER", "float": "FLOAT"}
_DEFAULT_IN_TEXT = re.compile(r"\(default (?!:)")


def _placeholder(param) -> str:
    """``PATH``, ``TEXT``, ``INTEGER`` or ``FLOAT`` from the option's annotation (``Optional``
    and ``List`` unwrapped; a list gets ``...``)."""
    import typing

    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", str)
    many = False
    while typing.get_origin(annotation) in (typing.Union, list):
        many = many or typing.get_origin(annotation) is list
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return _METAVARS.get(getattr(annotation, "__name__", ""), "TEXT") + ("..." if many else "")


def _one_help_style(command) -> None:
    """Gives every command's help one style: flags take no placeholder, values an upper-case
    one (``PATH``, ``TEXT``, ``INTEGER``, ``FLOAT``, or the option's own, such as ``N``),
    arguments their name in capitals (``{SRC}``, ``[SOURCE]``, ``{SOURCES}...`` on the usage
    line), and a default is said once, in the text, as ``(default: X)``."""
    for sub in getattr(command, "commands", {}).values():
        _one_help_style(sub)
    make_help_option = command.get_help_option  # -h/--help is made per context: a flag like the others

    def help_option(ctx, make=make_help_option):
        option = make(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for param in command.params:
        if param.param_type_name == "argument":
            # The usage line marks it as typer does: {SRC} required, [SOURCE] optional, ... many;
            # its name in capitals says what it is, so its help row shows no type beside it.
            param.metavar = param.name.upper()
            param.display_type_rich = lambda ctx: ""
            continue
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.metavar is None:
            param.metavar = _placeholder(param)
        text = _DEFAULT_IN_TEXT.sub("(default: ", param.help or "")
        default = param.default
        shown = getattr(param, "show_default", None)
        if shown and default not in (None, "", (), []) and not isinstance(default, bool) and "default" not in text.lower():
            value = default.name if hasattr(default, "name") else default  # an enum member: its name
            text = f"{text} (default: {value})".strip()
        param.help = text
        param.show_default = False


@functools.lru_cache(maxsize=1)
def _command():
    """The click command tree of :data:`app`, built once, in one help style."""
    command = typer.main.get_command(app)
    _one_help_style(command)
    return command


# The usage-error classes of the click that typer runs on: recent typer releases bundle their own
# copy (typer._click), older ones use the click package; either way they live in the module of
# typer.BadParameter. typer.Exit and typer.Abort are whichever classes that typer raises.
_click_exceptions = sys.modules[typer.BadParameter.__module__]


def _usage_error(exc) -> int:
    """Prints a click usage error as the usage line and one error line; returns its exit code."""
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and type(exc).__name__ == "NoArgsIsHelpError":  # a bare `ganzoo` / group
        console.print(ctx.get_help(), markup=False, highlight=False, soft_wrap=True)
        return 0
    if ctx is not None:
        err_console.print(ctx.get_usage(), markup=False, highlight=False, soft_wrap=True)
    message = " ".join(exc.format_message().split())
    if message == "Option '--json' requires an argument.":  # a bare --json was a flag once: say what it takes
        message += " Give a PATH to write the JSON to, or - to print it to stdout."
    error(message)
    return exc.exit_code


def _run(argv: list[str] | None) -> int:
    try:
        # Without standalone mode, typer turns Ctrl-C into a returned 130 (and typer.Exit(code) into
        # a returned code); older typer/click versions raise instead (handled below).
        result = _command().main(args=argv, prog_name="ganzoo", standalone_mode=False)
    except GanzooError as exc:
        error(exc)
        return 1
    except OSError as exc:
        # A write that no ganzoo writer wrapped (an append to a log) on a full or read-only disk:
        # still one line. Other OSErrors are bugs and keep their traceback.
        from ganzoo._io import _WRITE_ERRNOS

        if exc.errno not in _WRITE_ERRNOS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        error(f"{where}cannot write ({exc.strerror})")
        return 1
    except typer.Abort:
        err_console.print("aborted", markup=False)
        return 1
    except _click_exceptions.UsageError as exc:
        return _usage_error(exc)
    except _click_exceptions.ClickException as exc:
        error(" ".join(exc.format_message().split()))
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        result = 130
    # A command's own return value is an exit code only if it is an int (not a bool).
    code = result if isinstance(result, int) and not isinstance(result, bool) else 0
    if code == 130 and not _console.interruption_said():  # a run already said what it keeps
        err_console.print("interrupted", markup=False)
    return code


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (user errors: one line on stderr, exit 1; usage
    errors: the usage line and one error line, exit 2; Ctrl-C: 130). Warnings raised while a
    command runs are ``warning: ...`` lines on stderr."""
    console.quiet = False  # `--json -` silences the console for one command only
    _console.interruption_said()  # forget an interruption a library call in this process explained
    try:
        with routed_warnings():
            return _run(argv)
    finally:
        console.quiet = False


def entry_point() -> None:
    """Console-script entry: exits with :func:`main`'s code."""
    sys.exit(main())
