"""The package's module structure (issue 14 section 5): no import cycles among ganzoo's modules.

Every ``ganzoo`` module is imported, then its source is parsed and every import of a ganzoo module
is collected, wherever it stands: at the top, inside a function or a method. A cycle counts even
when it is broken at run time by a function-level import, because such a cycle still ties the
modules together (neither can be understood, tested or moved without the other).

The layering the graph must follow, lowest first (a module imports only from layers below it):

1. ``errors``, ``_io``, ``_safetensors_*``, ``_progress``, ``download``, ``registry``, ``modelcard``,
   ``resources``, ``ops``, ``images``, ``data``: no networks.
2. ``_build`` (strict network building from state dicts), ``streams`` (procedural image streams).
3. ``architectures`` (the plug-in table) and the families under it (``stylegan2`` with ``adafm``,
   ``stylegan3``); a family imports the table and ``_build``, never ``checkpoint``.
4. ``checkpoint`` (the :class:`~ganzoo.checkpoint.GAN` bundle; reaches a family only through
   ``architectures``), then ``readers`` (foreign formats).
5. ``hub`` (pull, transport, cards, mirrors; it folds nothing and computes no statistics), ``api``
   (``load``; reaches the Hub inside ``load``), ``analysis``, ``metrics``, ``ranking``,
   ``synth`` -> ``streams``, ``starter``, ``train`` (``train.dataset`` -> ``synth``, ``streams``),
   ``cocktail``.
6. ``publish`` (``ganzoo.push``: verify, fold through the architecture, filter statistics, then
   ``hub.push``), the command-line modules.

What is deliberately not an edge:

* Two by-name loads (``importlib.import_module("ganzoo.…")``): how ``ganzoo/__init__.py``
  resolves its public names and subpackages on first access (its attribute map is followed
  for ``from ganzoo import NAME`` instead), and how :mod:`ganzoo.architectures` discovers its
  built-in families (as it discovers installed plug-ins by entry point). Every other by-name
  import is an edge like any import: a string constant that names a ganzoo module
  (``importlib.import_module("ganzoo.api")``, a subpackage's lazy map) counts.
* Imports under ``if TYPE_CHECKING:``: they never run (annotations only).
* The command-line package ``ganzoo.cli`` (and ``ganzoo/__main__.py``, which runs it): the top
  layer, being restructured from ``cli.py`` into ``cli/``; it is left out of the graph, and
  :func:`test_nothing_below_the_cli_imports_it` makes sure leaving it out cannot hide a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ganzoo

ROOT = Path(ganzoo.__file__).resolve().parent

# The command-line layer (see the module docstring): excluded from the graph, never imported below.
CLI = ("ganzoo.cli", "ganzoo.__main__")

# Cycles known and accepted for now, each a sorted tuple of module names, with the reason.
# Keep this empty: a new entry needs a reason and an issue.
KNOWN_CYCLES: dict[tuple[str, ...], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_cli(name: str) -> bool:
    return any(name == cli or name.startswith(cli + ".") for cli in CLI)


def _modules() -> dict[str, Path]:
    """Module name -> file, for every module of the package (the CLI included)."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        modules.setdefault(_module_name(path), path)  # cli/__init__.py and cli.py: both the CLI
    return modules


def _lazy_names() -> dict[str, str]:
    """``ganzoo/__init__.py``'s public name -> defining module (its ``_LAZY`` literal)."""
    tree = ast.parse((ROOT / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("ganzoo/__init__.py has no _LAZY map")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every Import/ImportFrom node, at any depth, except under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _graph() -> dict[str, dict[str, int]]:
    """Module -> {imported ganzoo module: line of the first such import}, the CLI left out."""
    modules = _modules()
    lazy = _lazy_names()

    def owner(name: str) -> str | None:
        # The module a dotted name lives in: the longest prefix that is a module.
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        if _is_cli(name):
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [owner(alias.name) for alias in node.names if alias.name.split(".")[0] == "ganzoo"]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.split(".")[0] != "ganzoo":
                    continue
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    if full in modules:  # a submodule
                        targets.append(full)
                    elif source == "ganzoo" and alias.name in lazy:  # a public name of the package
                        targets.append(lazy[alias.name])
                    else:
                        targets.append(owner(source))
            for target in targets:
                if target and target != name and not _is_cli(target):
                    edges.setdefault(target, node.lineno)
        for target, line in _by_name_imports(name, path, modules):
            edges.setdefault(target, line)
        graph[name] = edges
    return graph


def _by_name_imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """Modules ``name`` imports by name: every string constant that is exactly a ganzoo module's
    name (``importlib.import_module("ganzoo.api")``, a lazy map's ``"ganzoo.synth.render"``).
    Two by-name loads are the structure itself, not edges: the package root's lazy map of public
    names (followed through ``from ganzoo import NAME`` instead), and the architecture table
    discovering its built-in families (``ganzoo.architectures`` -> ``ganzoo.architectures.*``,
    as it discovers installed plug-ins by entry point)."""
    if name == "ganzoo":
        return []
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules:
            target = node.value
            if target == name or _is_cli(target):
                continue
            if name == "ganzoo.architectures" and target.startswith("ganzoo.architectures."):
                continue
            found.append((target, node.lineno))
    return found


def _cycles(graph: dict[str, dict[str, int]]) -> list[tuple[str, ...]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(tuple(sorted(component)))
    return sorted(found)


def _reachable(graph: dict[str, dict[str, int]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), {}):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _describe(graph: dict[str, dict[str, int]], component: tuple[str, ...]) -> str:
    lines = [" <-> ".join(component)]
    for module in component:
        for target, line in sorted(graph[module].items()):
            if target in component:
                lines.append(f"    {module} (line {line}) imports {target}")
    return "\n".join(lines)


def test_every_module_imports_in_a_fresh_interpreter():
    names = sorted(name for name in _modules() if not _is_cli(name))
    # One fresh interpreter, so no module is already half-imported by the test session.
    code = (
        "import importlib, sys, traceback\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed.append(name + ': ' + traceback.format_exc().strip().splitlines()[-1])\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_no_import_cycles_among_ganzoo_modules():
    graph = _graph()
    assert "ganzoo.hub" in graph and "ganzoo.checkpoint" in graph and len(graph) > 40
    cycles = [c for c in _cycles(graph) if c not in KNOWN_CYCLES]
    assert not cycles, "import cycles:\n" + "\n".join(_describe(graph, c) for c in cycles)


def test_known_cycles_are_still_cycles():
    """A known exception that no longer exists must be removed from :data:`KNOWN_CYCLES`."""
    cycles = _cycles(_graph())
    assert [c for c in KNOWN_CYCLES if c not in cycles] == []


def test_nothing_below_the_cli_imports_it():
    """Leaving the CLI out of the graph hides no cycle: no other module imports it."""
    modules = _modules()
    offenders = []
    for name, path in modules.items():
        if _is_cli(name):
            continue
        for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.module == "ganzoo":
                names = [f"ganzoo.{a.name}" for a in node.names]
            if any(_is_cli(n) for n in names):
                offenders.append(f"{name} line {node.lineno}")
    assert offenders == []


@pytest.mark.parametrize(
    "module, forbidden",
    [
        # The Hub layer folds no architecture's networks and computes no statistics: push gets
        # them from its caller (ganzoo.publish).
        # Every module of the package (ganzoo.hub, ganzoo.hub.pulling, ...); it may use the
        # architecture table (ganzoo.architectures), never a family's module.
        *((name, ("ganzoo.analysis", "ganzoo.publish", "ganzoo.api", "ganzoo.train", "ganzoo.architectures."))
          for name in sorted(_modules()) if name == "ganzoo.hub" or name.startswith("ganzoo.hub.")),
        # A family's module builds networks with ganzoo._build, not through the checkpoint layer.
        ("ganzoo.architectures.stylegan2.adafm", ("ganzoo.checkpoint",)),
        # Synthetic data is below training: train.dataset uses synth, never the other way.
        ("ganzoo.synth", ("ganzoo.train",)),
        ("ganzoo.synth._stream", ("ganzoo.train",)),
        ("ganzoo.streams", ("ganzoo.synth", "ganzoo.train")),
        ("ganzoo._build", ("ganzoo.checkpoint", "ganzoo.architectures")),
    ],
)
def test_layer_boundaries(module, forbidden):
    imported = _graph()[module]
    assert [m for m in imported if m.startswith(forbidden)] == []


def test_the_hub_reaches_neither_analysis_nor_publishing_at_all():
    graph = _graph()
    hub_modules = [name for name in graph if name == "ganzoo.hub" or name.startswith("ganzoo.hub.")]
    assert len(hub_modules) > 1
    for module in hub_modules:
        reachable = _reachable(graph, module)
        assert "ganzoo.analysis" not in reachable and "ganzoo.publish" not in reachable, module


def test_the_hub_knows_nothing_of_adafm_or_filter_statistics():
    from ganzoo import hub

    files = sorted((ROOT / "hub").rglob("*.py"))
    assert (ROOT / "hub" / "__init__.py") in files and len(files) > 1
    found = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        names |= {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
        names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        found += [f"{path.name}: {n}" for n in sorted(names) if "adafm" in n.lower() or "fold" in n.lower() or "filter_report" in n]
    assert found == []
    assert not hasattr(hub, "load_pulled")  # one loader: GAN.load(verify=False, missing_ok=True)
