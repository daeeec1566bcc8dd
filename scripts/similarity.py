"""How much of a set of Python files reads like another set, line by line.

Usage::

    python scripts/similarity.py OURS REFERENCE [--min-chars 12] [--fuzzy 0.9] [--show]

``OURS`` and ``REFERENCE`` are Python files or folders (searched recursively for ``*.py``).
For every file under ``OURS`` it reports:

* code: of the file's non-trivial code lines, the share whose normalised text is also a code
  line of the reference (``exact``), and the share that is at least ``--fuzzy`` similar to one
  (``near``, difflib ratio, which includes the exact ones);
* prose: the same for comment and docstring lines, compared as lower-case words, where a
  docstring line ``name: text`` also counts as ``text`` (argument descriptions kept in a
  docstring instead of trailing comments), and ``6-gram``: the share of prose words that lie in
  a run of six consecutive words that also occurs in the reference's prose (catches text that
  was only re-wrapped).

What counts as a line:

* code lines are the physical lines that hold a token other than a comment, outside of
  docstrings and other bare string statements; a trailing comment is cut off. Normalised:
  white space folded (and dropped next to punctuation), quotes unified, a trailing comma dropped;
* trivial lines do not count: shorter than ``--min-chars`` after normalisation, import lines,
  ``super().__init__()``, and prose lines of fewer than three words.

The script only reads the files (it never imports or runs them) and exits 0.
"""

from __future__ import annotations

import argparse
import ast
import bisect
import difflib
import io
import re
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

_SKIPPED_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                   tokenize.ENCODING, tokenize.ENDMARKER}  # fmt: skip
_BOILERPLATE = {"super().__init__()"}
_ARG_PREFIX = re.compile(r"^[\w\s,*()`.\[\]|]+:\s*(.+)$")  # "name (type): text" / "a, b: text"


@dataclass
class Lines:
    """The code and prose lines of one file: (line number, normalised text)."""

    path: Path
    code: list[tuple[int, str]] = field(default_factory=list)
    prose: list[tuple[int, str]] = field(default_factory=list)
    prose_blocks: list[list[str]] = field(default_factory=list)  # word streams of comment runs/docstrings


def normalise_code(text: str) -> str:
    text = re.sub(r"\s+", " ", text.strip()).replace("'", '"')
    text = re.sub(r" ?([^\w\s\"]) ?", r"\1", text)
    return text.rstrip(",")


def prose_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _string_statement_lines(tree: ast.AST) -> set[int]:
    """Lines covered by docstrings and other bare string expressions."""
    covered: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            covered.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return covered


def read_lines(path: Path) -> Lines:
    source = path.read_text(encoding="utf-8", errors="replace")
    physical = source.splitlines()
    result = Lines(path)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = ast.Module(body=[], type_ignores=[])
    docstring_lines = _string_statement_lines(tree)

    code_cut: dict[int, int] = {}  # line -> column where its comment starts
    has_code: set[int] = set()
    comments: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
                code_cut[tok.start[0]] = tok.start[1]
            elif tok.type not in _SKIPPED_TOKENS:
                for line in range(tok.start[0], tok.end[0] + 1):
                    if line not in docstring_lines:
                        has_code.add(line)
    except (tokenize.TokenError, IndentationError):
        pass

    for number in sorted(has_code):
        text = physical[number - 1][: code_cut.get(number)]
        result.code.append((number, normalise_code(text)))

    # Prose: comments (whole-line or trailing) and docstring lines, grouped into blocks of
    # consecutive lines for the word-run measure.
    prose_numbers = sorted(set(comments) | docstring_lines)
    block: list[str] = []
    previous = None
    for number in prose_numbers:
        if number in comments:
            text = comments[number]
        else:
            text = physical[number - 1].strip().strip("\"'").strip()
            text = re.sub(r"^[rbuf]?(\"\"\"|''')", "", text)
        if previous is not None and number != previous + 1 and block:
            result.prose_blocks.append(block)
            block = []
        words = prose_words(text)
        block.extend(words)
        previous = number
        if words:
            result.prose.append((number, " ".join(words)))
            match = _ARG_PREFIX.match(text)
            if match and len(prose_words(match.group(1))) >= 3:
                result.prose.append((-number, " ".join(prose_words(match.group(1)))))  # variant, same line
    if block:
        result.prose_blocks.append(block)
    return result


def python_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.py") if p.is_file())


def is_trivial_code(text: str, min_chars: int) -> bool:
    return (
        len(text) < min_chars
        or text.startswith(("import ", "from "))
        or text in _BOILERPLATE
    )


class Index:
    """Normalised reference lines, for exact and near look-ups."""

    def __init__(self, entries: list[tuple[str, str]]):  # (text, where)
        self.where: dict[str, str] = {}
        for text, where in entries:
            self.where.setdefault(text, where)
        self.by_length = sorted(self.where, key=len)
        self.lengths = [len(t) for t in self.by_length]

    def exact(self, text: str) -> str | None:
        return self.where.get(text)

    def near(self, text: str, threshold: float) -> tuple[float, str] | None:
        if threshold <= 0:
            return None
        n = len(text)
        lo = bisect.bisect_left(self.lengths, n * threshold / (2 - threshold))
        hi = bisect.bisect_right(self.lengths, n * (2 - threshold) / threshold)
        matcher = difflib.SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(text)
        best: tuple[float, str] | None = None
        for candidate in self.by_length[lo:hi]:
            matcher.set_seq1(candidate)
            if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
                continue
            ratio = matcher.ratio()
            if ratio >= threshold and (best is None or ratio > best[0]):
                best = (ratio, self.where[candidate])
        return best


def shingles(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def covered_share(blocks: list[list[str]], reference: set[tuple[str, ...]], n: int) -> tuple[int, int]:
    covered = total = 0
    for words in blocks:
        hit = [False] * len(words)
        for i in range(len(words) - n + 1):
            if tuple(words[i : i + n]) in reference:
                hit[i : i + n] = [True] * n
        covered += sum(hit)
        total += len(words)
    return covered, total


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ours", type=Path, help="file or folder measured")
    parser.add_argument("reference", type=Path, help="file or folder compared against")
    parser.add_argument("--min-chars", type=int, default=12, help="shorter normalised code lines are trivial")
    parser.add_argument("--fuzzy", type=float, default=0.9, help="difflib ratio of a near match (0: off)")
    parser.add_argument("--ngram", type=int, default=6, help="word-run length of the prose run measure")
    parser.add_argument("--show", action="store_true", help="list every matching line")
    args = parser.parse_args(argv)

    ref_files = [read_lines(p) for p in python_files(args.reference)]
    base = args.reference if args.reference.is_dir() else args.reference.parent
    code_index = Index([(t, f"{f.path.relative_to(base)}:{n}") for f in ref_files for n, t in f.code])
    prose_index = Index([(t, f"{f.path.relative_to(base)}:{abs(n)}") for f in ref_files for n, t in f.prose])
    ref_shingles: set[tuple[str, ...]] = set()
    for f in ref_files:
        for words in f.prose_blocks:
            ref_shingles |= shingles(words, args.ngram)

    header = f"{'file':34} {'code':>5} {'exact':>6} {'near':>6} | {'prose':>5} {'exact':>6} {'near':>6} {'runs':>6}"
    print(header)
    print("-" * len(header))
    totals = [0] * 8
    shown: list[str] = []
    for path in python_files(args.ours):
        ours = read_lines(path)
        code = [(n, t) for n, t in ours.code if not is_trivial_code(t, args.min_chars)]
        code_exact = code_near = 0
        for n, text in code:
            hit = code_index.exact(text)
            near = None if hit else code_index.near(text, args.fuzzy)
            code_exact += hit is not None
            code_near += hit is not None or near is not None
            if args.show and (hit or near):
                where = hit or f"{near[1]} ({near[0]:.2f})"
                shown.append(f"{path.name}:{n} code ~ {where}: {text}")

        # Prose: a line counts once, matched as itself or as its "name: text" variant.
        prose_lines: dict[int, list[str]] = {}
        for n, text in ours.prose:
            prose_lines.setdefault(abs(n), []).append(text)
        prose_lines = {n: v for n, v in prose_lines.items() if len(v[0].split()) >= 3}
        prose_exact = prose_near = 0
        for n, variants in prose_lines.items():
            hit = next((w for w in map(prose_index.exact, variants) if w), None)
            near = None
            if hit is None:
                near = next((r for r in (prose_index.near(v, args.fuzzy) for v in variants) if r), None)
            prose_exact += hit is not None
            prose_near += hit is not None or near is not None
            if args.show and (hit or near):
                where = hit or f"{near[1]} ({near[0]:.2f})"
                shown.append(f"{path.name}:{n} prose ~ {where}: {variants[0]}")
        run_words, all_words = covered_share(ours.prose_blocks, ref_shingles, args.ngram)

        counts = [len(code), code_exact, code_near, len(prose_lines), prose_exact, prose_near, run_words, all_words]
        totals = [a + b for a, b in zip(totals, counts)]
        name = str(path.relative_to(args.ours)) if args.ours.is_dir() else path.name
        print(f"{name:34} {len(code):5d} {pct(code_exact, len(code))} {pct(code_near, len(code))} | "
              f"{len(prose_lines):5d} {pct(prose_exact, len(prose_lines))} {pct(prose_near, len(prose_lines))} "
              f"{pct(run_words, all_words)}")  # fmt: skip
    if args.ours.is_dir():
        c, ce, cn, p, pe, pn, rw, aw = totals
        print("-" * len(header))
        print(f"{'all':34} {c:5d} {pct(ce, c)} {pct(cn, c)} | {p:5d} {pct(pe, p)} {pct(pn, p)} {pct(rw, aw)}")
    print(f"\ncode: non-trivial code lines (>= {args.min_chars} chars normalised, no imports); "
          f"near: difflib ratio >= {args.fuzzy}; prose: comment/docstring lines of >= 3 words; "
          f"runs: prose words inside a {args.ngram}-word run also in the reference")  # fmt: skip
    if shown:
        print("\nmatches:")
        print("\n".join(shown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
