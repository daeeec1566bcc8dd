"""``ganzoo cache list`` and ``ganzoo cache clear``: what ganzoo keeps in its cache, and removing it.

ganzoo's own cache (:func:`ganzoo._io.cache_home`: ``$GANZOO_CACHE``, else
``$XDG_CACHE_HOME/ganzoo`` or ``~/.cache/ganzoo``) holds:

* ``features/``: features of data sets and of generated samples (``rank``, ``metrics``),
* ``checkpoints/NAME/``: checkpoints converted from upstream releases, or registered with
  ``ganzoo convert FILE --as NAME``,
* ``extractors/``: feature-extractor weights downloaded from their upstream URLs,
* ``downloads/``: upstream release files (the sources of the converted checkpoints),
* ``verified.json``: the record of files whose sha256 was checked (saves re-hashing).

Checkpoints and weights pulled from the Hub live in the Hugging Face cache, which
huggingface_hub's ``hf cache ls`` and ``hf cache rm`` manage. Only the names above are ever
deleted: a ``GANZOO_CACHE`` pointed at a folder holding other files loses none of them.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from ganzoo.cli._common import console, err_console, json_option, json_output
from ganzoo.errors import GanzooError

cache_app = typer.Typer(
    name="cache",
    help="List and clear ganzoo's caches (features, converted checkpoints, extractor weights).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")

# name -> (path under the cache, what it is); in the order listed. "records" is cleared by --all only.
SECTIONS = {
    "features": ("features", "features of data sets and samples (rank, metrics)"),
    "converted": ("checkpoints", "checkpoints converted from upstream files or `convert --as`"),
    "extractors": ("extractors", "feature-extractor weights"),
    "downloads": ("downloads", "upstream release files (the converted checkpoints' sources)"),
    "records": ("verified.json", "the sha256 checks already made"),
}


@dataclass
class Section:
    """One part of the cache: its files, their total size, and (for folders) its items."""

    name: str
    path: Path
    description: str
    items: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


def _size(path: Path) -> tuple[int, int]:
    """(files, bytes) below ``path`` (links are not followed)."""
    if path.is_symlink() or path.is_file():
        return 1, path.lstat().st_size
    files = size = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                size += os.lstat(os.path.join(folder, name)).st_size
                files += 1
            except OSError:
                pass
    return files, size


def scan() -> list[Section]:
    """Every section of ganzoo's cache that exists, with its size."""
    from ganzoo._io import cache_home

    root = cache_home().expanduser()
    sections = []
    for name, (relative, description) in SECTIONS.items():
        path = root / relative
        if not os.path.lexists(path):
            continue
        section = Section(name, path, description)
        if path.is_dir() and not path.is_symlink():
            section.items = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
        else:
            section.items = [path.name]
        section.files, section.bytes = _size(path)
        sections.append(section)
    return sections


def _items(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def _human(size: int) -> str:
    from rich.filesize import decimal

    return decimal(size)


@cache_app.command("list")
def list_command(json_out: Optional[str] = json_option("the sections and their sizes")) -> None:
    """Show what ganzoo's cache holds, section by section, with sizes."""
    from ganzoo._io import cache_home
    from ganzoo.hub.settings import hub_cache_dir

    as_json = json_output(json_out)
    root = cache_home().expanduser()
    sections = scan()
    total = sum(s.bytes for s in sections)
    if not sections:
        console.print(f"ganzoo's cache ({root}) is empty", soft_wrap=True, highlight=False)
    else:
        table = Table(title=f"ganzoo's cache: {root}", title_justify="left", show_footer=True, box=box.SIMPLE_HEAD)
        table.add_column("section", "total", no_wrap=True)
        table.add_column("items", str(sum(len(s.items) for s in sections)), justify="right", no_wrap=True)
        table.add_column("size", _human(total), justify="right", no_wrap=True)
        table.add_column("what", overflow="fold")
        for s in sections:
            what = s.description
            if s.name == "converted" and s.items:
                what += ": " + ", ".join(s.items)
            table.add_row(s.name, str(len(s.items)), _human(s.bytes), what)
        console.print(table)
        console.print("clear with: ganzoo cache clear --features | --converted | --extractors | --downloads | --all",
                      soft_wrap=True, highlight=False)  # fmt: skip
    console.print(f"Checkpoints and weights pulled from the Hub are in the Hugging Face cache ({hub_cache_dir()}): "
                  "see `hf cache ls` and `hf cache rm`", soft_wrap=True, highlight=False, markup=False)  # fmt: skip
    as_json.write({"path": str(root), "total_bytes": total, "hub_cache": str(hub_cache_dir()),
                   "sections": [{"name": s.name, "path": str(s.path), "items": len(s.items), "files": s.files,
                                 "bytes": s.bytes, "names": s.items} for s in sections]})  # fmt: skip


def _confirm(question: str) -> bool:
    err_console.print(f"{question} [y/N] ", end="", markup=False, highlight=False, soft_wrap=True)
    answer = sys.stdin.readline() if sys.stdin is not None else ""
    return answer.strip().lower() in ("y", "yes")


def _interactive() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):
        return False


@cache_app.command("clear")
def clear(
    features: bool = typer.Option(False, "--features", help="Features of data sets and samples (recomputed when needed)."),
    converted: bool = typer.Option(False, "--converted", help="Converted checkpoints (also those registered with `convert --as`)."),
    extractors: bool = typer.Option(False, "--extractors", help="Feature-extractor weights (downloaded again when needed)."),
    downloads: bool = typer.Option(False, "--downloads", help="Upstream release files kept after conversion."),
    everything: bool = typer.Option(False, "--all", help="All of the above and the record of verified files."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (needed where input is not a terminal)."),
) -> None:
    """Delete parts of ganzoo's cache (asks first; the Hugging Face cache is not touched)."""
    chosen = {"features": features, "converted": converted, "extractors": extractors, "downloads": downloads}
    names = list(SECTIONS) if everything else [name for name, on in chosen.items() if on]
    if not names:
        raise GanzooError("cache clear: say what to delete: --features, --converted, --extractors, --downloads or --all "
                          "(see `ganzoo cache list`)")  # fmt: skip
    sections = [s for s in scan() if s.name in names]
    if not sections:
        console.print("nothing to delete: " + ", ".join(names) + " " + ("is" if len(names) == 1 else "are") + " empty",
                      highlight=False)  # fmt: skip
        return
    total = sum(s.bytes for s in sections)
    summary = ", ".join(f"{s.name} ({_items(len(s.items))}, {_human(s.bytes)})" for s in sections)
    if not yes:
        if not _interactive():
            raise GanzooError(f"cache clear: would delete {summary}; add --yes to delete without being asked")
        warning = ""
        if any(s.name == "converted" for s in sections):
            warning = " (checkpoints registered with `convert --as` from a manual download need that file again)"
        if not _confirm(f"delete {summary}, {_human(total)} in all{warning}?"):
            err_console.print("nothing deleted", markup=False, highlight=False)
            raise typer.Exit(1)
    for s in sections:
        try:
            if s.path.is_dir() and not s.path.is_symlink():
                shutil.rmtree(s.path)
            else:
                s.path.unlink()
        except OSError as exc:
            raise GanzooError(f"{s.path}: cannot delete ({exc.strerror or exc})") from None
        console.print(f"deleted {s.name}: {_items(len(s.items))}, {_human(s.bytes)} ({s.path})", soft_wrap=True,
                      highlight=False, markup=False)  # fmt: skip
    if len(sections) > 1:
        console.print(f"freed {_human(total)}", highlight=False)
