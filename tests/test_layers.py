"""The package's layers (issue 27): no module imports a module above it, and none has grown too big.

``tests/test_structure.py`` finds the import graph (every import of a ganzoo module, at any depth,
and every string constant naming one) and forbids cycles. This file orders the modules into
layers, lowest first, and checks that every edge of that graph goes to the importer's layer or
one below:

1. foundation: errors, files and atomic writes, console and progress, image and data files,
   downloads, ops, resources, compile settings, the playground;
2. building blocks: strict network building (``_build``), procedural streams and synthetic data,
   what a reader is and returns (``readers.base``) and the restricted unpickler, the objective
   interface (``train.loss``) and ADA (``train.augment``);
3. families: the architecture table and every family under it (a plug-in's place);
4. bundle and formats: the registry, model cards, the ``GAN`` bundle (``checkpoint``), the
   reader table and the generic state-dict reader (``readers``), ``conversion``;
5. services: the Hub, ``load``, analysis, metrics, ranking, the starter models, training,
   merging;
6. publishing (``ganzoo.push``).

Importing ``a.b.c`` first runs the package ``a.b``: :func:`test_importing_a_module_runs_nothing_above_it`
checks that what a package's ``__init__`` imports at import time is no higher than any module
outside it that imports one of its modules (so a family importing ``ganzoo.train.loss`` does not
load training, nor ``ganzoo.readers.base`` the reader table).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import functools

from test_structure import CLI, ROOT, _is_cli, _is_type_checking, _modules
from test_structure import _graph as _parse_graph

# The graph parses every module; these tests read it many times and never change it.
_graph = functools.lru_cache(maxsize=1)(_parse_graph)

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("ganzoo", "ganzoo.errors", "ganzoo._console", "ganzoo._malloc", "ganzoo._io", "ganzoo._progress", "ganzoo._threads",
                    "ganzoo._safetensors_*", "ganzoo.images", "ganzoo.data", "ganzoo.download", "ganzoo.ops",
                    "ganzoo.resources", "ganzoo.compile", "ganzoo.playground*")),
    ("building blocks", ("ganzoo._build", "ganzoo.streams", "ganzoo.synth*", "ganzoo.readers.base",
                         "ganzoo.readers.safe_pickle*", "ganzoo.readers._*", "ganzoo.train.loss",
                         "ganzoo.train.augment")),
    ("families", ("ganzoo.architectures*",)),
    ("bundle and formats", ("ganzoo.registry", "ganzoo.modelcard", "ganzoo.checkpoint", "ganzoo.readers*",
                            "ganzoo.conversion")),
    ("services", ("ganzoo.hub*", "ganzoo.api", "ganzoo.analysis", "ganzoo.metrics*", "ganzoo.ranking*",
                  "ganzoo.rank_report", "ganzoo.starter", "ganzoo.train*", "ganzoo.cocktail*")),
    ("publishing", ("ganzoo.publish",)),
]  # fmt: skip

MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 80
# "module" or "module:function" -> why it may be longer. Keep it empty: a new entry needs a reason.
SIZE_EXCEPTIONS: dict[str, str] = {}


def _matches(pattern: str, name: str) -> int:
    """How specifically ``pattern`` names module ``name``: its length, or -1 when it does not.
    ``a.b`` names that module; ``a.b*`` the module or package and everything under it; ``a._x_*``
    every module whose name starts so."""
    if pattern.endswith("*"):
        stem = pattern[:-1]
        under = name.startswith(stem) if stem.endswith("_") else (name == stem or name.startswith(stem + "."))
        return len(stem) if under else -1
    return len(pattern) + 1 if name == pattern else -1  # an exact name beats any prefix


def layer_of(name: str) -> int:
    """The index in :data:`LAYERS` of the most specific pattern naming module ``name``."""
    best, layer = -1, -1
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            score = _matches(pattern, name)
            if score > best:
                best, layer = score, index
    return layer


def _describe_layer(index: int) -> str:
    return f"{index + 1} ({LAYERS[index][0]})"


def test_every_module_has_a_layer():
    unplaced = sorted(name for name in _modules() if not _is_cli(name) and layer_of(name) < 0)
    assert unplaced == [], "place these modules in a layer of LAYERS: " + ", ".join(unplaced)


def test_no_module_imports_a_module_above_it():
    upward = []
    for module, edges in sorted(_graph().items()):
        for target, line in sorted(edges.items()):
            if layer_of(target) > layer_of(module):
                upward.append(f"{module} (layer {_describe_layer(layer_of(module))}, line {line}) imports "
                              f"{target} (layer {_describe_layer(layer_of(target))})")  # fmt: skip
    assert upward == [], "\n".join(upward)


def _families() -> list[str]:
    return sorted(path.name for path in (ROOT / "architectures").iterdir()
                  if (path / "__init__.py").is_file())  # fmt: skip


@pytest.mark.parametrize("family", _families())
def test_a_family_imports_only_the_table_building_blocks_and_itself(family):
    """A family's modules import the foundation, the building blocks, the architecture table and
    its shared helpers (``architectures._*``), and their own package; a family may build on
    another's networks (StyleGAN3 on StyleGAN2's), never on a layer above the table."""
    package = f"ganzoo.architectures.{family}"
    graph = _graph()
    assert package in graph
    for module, edges in graph.items():
        if module != package and not module.startswith(package + "."):
            continue
        for target in edges:
            assert layer_of(target) <= layer_of("ganzoo.architectures"), f"{module} imports {target}"


def _top_level_import_nodes(tree: ast.Module):
    """The import statements that run when the module is imported: top-level ones and those under
    top-level ``if``/``try`` (not ``if TYPE_CHECKING:``), not in function or class bodies."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node.test):
            stack.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])


def _module_level_imports(name: str, modules: dict[str, Path]) -> set[str]:
    """The ganzoo modules importing ``name`` runs (its own top-level imports, resolved as the
    graph resolves them: the graph's targets of this module that these statements name)."""
    path = modules[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _top_level_import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            sources = [alias.name for alias in node.names]
        else:
            base = package.split(".")[: len(package.split(".")) - max(node.level - 1, 0)] if node.level else []
            source = ".".join(base + ([node.module] if node.module else []))
            sources = [f"{source}.{alias.name}" for alias in node.names] + [source]
        for source in sources:
            while source and source not in modules:
                source = source.rpartition(".")[0]
            if source.startswith("ganzoo") and source != name and not _is_cli(source):
                found.add(source)
    return found


def test_importing_a_module_runs_nothing_above_it():
    modules = _modules()
    graph = _graph()
    runs: dict[str, set[str]] = {}

    def closure(package: str) -> set[str]:
        # What importing ``package`` runs: its module-level imports, and theirs, transitively.
        if package not in runs:
            runs[package] = set()
            found = set()
            for target in _module_level_imports(package, modules):
                found |= {target} | closure(target)
            runs[package] = found
        return runs[package]

    problems = []
    for module, edges in sorted(graph.items()):
        for target in edges:
            parts = target.split(".")
            for depth in range(1, len(parts)):
                package = ".".join(parts[:depth])
                if package == "ganzoo" or module == package or module.startswith(package + "."):
                    continue
                for loaded in sorted(closure(package)):
                    if layer_of(loaded) > layer_of(module):
                        problems.append(f"{module} imports {target}, whose package {package} loads {loaded}")
    assert problems == [], "\n".join(problems)


def _sizes():
    for name, path in sorted(_modules().items()):
        source = path.read_text(encoding="utf-8")
        yield name, "module", len(source.splitlines())
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{name}:{node.name}", "function", node.end_lineno - node.lineno + 1


def test_no_module_over_700_lines_and_no_function_over_80():
    limits = {"module": MAX_MODULE_LINES, "function": MAX_FUNCTION_LINES}
    too_big = [f"{what} {name}: {lines} lines" for name, what, lines in _sizes()
               if lines > limits[what] and name not in SIZE_EXCEPTIONS]  # fmt: skip
    assert too_big == [], "\n".join(too_big)


def test_size_exceptions_are_still_needed():
    limits = {"module": MAX_MODULE_LINES, "function": MAX_FUNCTION_LINES}
    sizes = {name: lines > limits[what] for name, what, lines in _sizes()}
    assert [name for name in SIZE_EXCEPTIONS if not sizes.get(name)] == []


def test_the_cli_is_in_the_size_check_but_outside_the_layers():
    """The command-line package is the top (it imports every layer); nothing below imports it
    (``test_structure.test_nothing_below_the_cli_imports_it``). Its files are size-checked."""
    names = {name for name, _, _ in _sizes()}
    assert any(name.startswith(CLI[0]) for name in names)
