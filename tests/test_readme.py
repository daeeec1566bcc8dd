"""The README's examples run as written.

Every fenced ``bash`` and ``python`` block of README.md carries a marker, an HTML comment on the
line before it (invisible on the rendered page)::

    <!-- readme-test: run -->                       runs as written in the default suite
    <!-- readme-test: run; skip-lines "pip install" (why) -->   the same, without the lines that
                                                    start with one of the quoted prefixes
    <!-- readme-test: slow (why) -->                runs as written under ``pytest -m slow``; the
                                                    default suite runs it with the smaller
                                                    arguments of ``SMALLER`` below
    <!-- readme-test: shrink (why) -->              runs only with the smaller arguments of
                                                    ``SMALLER`` (as written it takes hours)
    <!-- readme-test: skip (why) -->                never runs here (needs the network, a token,
                                                    or files that stand for the reader's own)

Blocks run in a fresh temporary directory with no network: ``HF_HUB_OFFLINE=1``, an unreachable
``HF_ENDPOINT``, and temporary ``GANZOO_CACHE`` and ``HF_HOME``. Shell blocks go through bash and
the real ``ganzoo`` console script; every ``--out``/``--outdir``/``--json``/``--plot`` they name
must exist afterwards (``--json -`` prints to stdout). Python blocks run in a fresh interpreter.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ganzoo_script

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# At least this many README blocks run in the default suite (as written or with SMALLER).
MIN_BLOCKS_RUN = 6

# The smaller arguments of the `slow` and `shrink` blocks in the default suite: README text ->
# what runs instead. Every entry must match the README (a stale one fails the test).
SMALLER = {
    # the offline workflow: ~2 min finetune, ~3 min merge as written
    "--target mydata --feature-extractor pixels": "--target mydata --feature-extractor pixels --num-gen 64",
    "--data mydata --kimg 10 --out my-gan": "--data mydata --kimg 0.032 --batch 8 --out my-gan",
    "--root-kimg 1 --merge-kimg 6 --batch 4": "--root-kimg 0.008 --merge-kimg 0.016 --batch 4",
    # synthetic data at full size: 100k 256² images and 5000 kimg of pretraining
    "--n 100000 --resolution 256 --out pps.zip": "--n 64 --resolution 32 --out pps.zip",
    "--resolution 256 --kimg 5000 --out runs/pps": "--resolution 32 --kimg 0.016 --batch 8 --out runs/pps",
    # the 2-D playground's quick preset (~1 CPU-minute) -> a few steps (imports and figures remain)
    "quick=True": "config=ganzoo.playground.StudyConfig(pretrain_steps=30, finetune_steps=10, checkpoint_every=10, "
                  "eval_every=10, w1_samples=32, metric_samples=32)",
}  # fmt: skip

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_MARKER = re.compile(r"^<!--\s*readme-test:\s*(run|slow|shrink|skip)\b(.*?)-->\s*$")
_OUTPUTS = re.compile(r"--(?:out|outdir|json|plot)[ =](\S+)")


@dataclass
class Block:
    line: int  # of the opening fence
    lang: str
    code: str
    mode: str  # run | slow | shrink | skip | (missing)
    note: str
    skip_lines: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"L{self.line}-{self.lang}"


def readme_blocks(text: str | None = None) -> list[Block]:
    """Every bash/python block of the README with its marker."""
    text = README.read_text(encoding="utf-8") if text is None else text
    blocks = []
    for match in _FENCE.finditer(text):
        lang = match.group(1)
        if lang not in ("bash", "sh", "python"):
            continue
        line = text.count("\n", 0, match.start()) + 1
        before = [ln for ln in text[: match.start()].splitlines() if ln.strip()]
        marker = _MARKER.match(before[-1].strip()) if before else None
        if marker is None:
            blocks.append(Block(line, lang, match.group(2), "(missing)", ""))
            continue
        rest = marker.group(2).strip()
        skip_lines: tuple[str, ...] = ()
        if rest.startswith(";"):
            option = rest[1:].strip()
            assert option.startswith("skip-lines"), f"README line {line}: unknown marker option {option!r}"
            skip_lines = tuple(re.findall(r'"([^"]+)"', option.split("(")[0]))
            rest = option[option.index("(") :] if "(" in option else ""
        blocks.append(Block(line, "bash" if lang == "sh" else lang, match.group(2), marker.group(1), rest, skip_lines))
    return blocks


def runnable_code(block: Block, smaller: bool) -> str:
    code = "\n".join(ln for ln in block.code.splitlines() if not ln.lstrip().startswith(block.skip_lines or ("\0",)))
    if smaller:
        for original, replacement in SMALLER.items():
            code = code.replace(original, replacement)
    return code


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9", GANZOO_CACHE=str(tmp / "ganzoo-cache"),
               HF_HOME=str(tmp / "hf-home"), PYTHONPATH=str(ROOT))  # fmt: skip
    env.pop("HF_TOKEN", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def run_block(block: Block, tmp: Path, smaller: bool, timeout: float) -> tuple[str, float]:
    """Runs a block in ``tmp/work``; returns the code run and the wall time."""
    work = tmp / "work"
    work.mkdir(parents=True, exist_ok=True)
    code = runnable_code(block, smaller)
    env = _env(tmp)
    if block.lang == "bash":
        assert shutil.which("ganzoo", path=env["PATH"]) == ganzoo_script()
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    else:
        (tmp / "block.py").write_text(code, encoding="utf-8")
        command = [sys.executable, str(tmp / "block.py")]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, (
        f"README block at line {block.line} failed (exit {result.returncode}):\n{code}\n"
        f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    )
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    if block.lang == "bash":
        commands = "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in code.splitlines())  # no comments
        for path in _OUTPUTS.findall(commands):
            if path == "-":  # --json -: printed to stdout, not a file
                continue
            assert (work / path).exists(), f"README line {block.line}: {path} was not written\n{code}"
    return code, seconds


BLOCKS = readme_blocks()


def test_every_block_is_marked_and_enough_of_them_run(capsys):
    blocks = readme_blocks()
    unmarked = [b.id for b in blocks if b.mode == "(missing)"]
    assert not unmarked, f"README blocks without a <!-- readme-test: ... --> marker: {unmarked}"
    assert all(b.note.startswith("(") for b in blocks if b.mode in ("slow", "shrink", "skip")), \
        "slow/shrink/skip markers say why, in parentheses"
    text = README.read_text(encoding="utf-8")
    stale = [original for original in SMALLER if original not in text]
    assert not stale, f"SMALLER entries that no longer match the README: {stale}"
    shrinkable = [b for b in blocks if b.mode in ("slow", "shrink")]
    unshrunk = [b.id for b in shrinkable if runnable_code(b, True) == runnable_code(b, False)]
    assert not unshrunk, f"slow/shrink blocks that SMALLER does not make smaller: {unshrunk}"
    for b in blocks:
        lines = [ln.lstrip() for ln in b.code.splitlines()]
        unused = [prefix for prefix in b.skip_lines if not any(ln.startswith(prefix) for ln in lines)]
        assert not unused, f"README {b.id}: skip-lines that match no line: {unused}"
    run = [b for b in blocks if b.mode in ("run", "slow", "shrink")]
    listing = "\n".join(
        f"  {b.id:12} {b.mode:7} {'as written' if b.mode == 'run' else 'smaller args (SMALLER)'}"
        f"{' minus lines ' + ', '.join(b.skip_lines) if b.skip_lines else ''}  {b.note}"
        if b.mode != "skip" else f"  {b.id:12} skip    {b.note}"
        for b in blocks
    )  # fmt: skip
    with capsys.disabled():  # the list is part of the test's output, even when it passes
        print(f"\nREADME blocks ({len(run)} of {len(blocks)} run in the default suite):\n{listing}")
    assert len(run) >= MIN_BLOCKS_RUN, listing


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.mode in ("run", "slow", "shrink")], ids=lambda b: b.id)
def test_readme_block_runs_offline(block, tmp_path):
    smaller = block.mode in ("slow", "shrink")
    code, seconds = run_block(block, tmp_path, smaller=smaller, timeout=900)
    print(f"README {block.id} ({'smaller arguments' if smaller else 'as written'}, {seconds:.1f} s):\n{code}")


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in BLOCKS if b.mode == "slow"], ids=lambda b: b.id)
def test_readme_slow_block_runs_as_written(block, tmp_path):
    code, seconds = run_block(block, tmp_path, smaller=False, timeout=3 * 3600)
    print(f"README {block.id} (as written, {seconds:.1f} s):\n{code}")


# ------------------------------------------------------------------------------------------------
# What the README's Python API promises


def test_subpackages_are_attributes_after_import_ganzoo_which_stays_light():
    code = (
        "import sys\n"
        "import ganzoo\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')], 'import ganzoo is heavy'\n"
        "images = ganzoo.synth.render('primitives-ps', range(2), 32, seed=0)\n"
        "assert images.shape == (2, 32, 32, 3) and images.dtype.name == 'uint8'\n"
        "assert callable(ganzoo.playground.reproduce) and callable(ganzoo.playground.StudyConfig)\n"
        "assert callable(ganzoo.metrics.fid) and ganzoo.architectures.__name__ == 'ganzoo.architectures'\n"
        "assert {'synth', 'playground', 'metrics'} <= set(dir(ganzoo))\n"
        "import ganzoo.readers.safe_pickle, ganzoo.cocktail, ganzoo.ranking\n"
        "assert callable(ganzoo.convert) and callable(ganzoo.merge) and callable(ganzoo.rank)  # the functions\n"
        "assert callable(ganzoo.cocktail.average_gans) and callable(ganzoo.readers.safe_pickle.load_pickle)\n"
        "assert callable(ganzoo.ranking.write_sample_features)  # the modules, never shadowed\n"
        "assert not hasattr(ganzoo, 'no_such_thing')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr


def test_class_errors_name_the_python_keyword_in_python_and_the_option_on_the_cli(tmp_path, capsys):
    from ganzoo.cli import main
    from ganzoo.errors import GanzooError
    from helpers import tiny_gan

    conditional, unconditional = tiny_gan(c_dim=2), tiny_gan()
    with pytest.raises(GanzooError, match=r"choose one with class_idx \(class0, class1\)") as error:
        conditional.sample(2)
    assert "--class" not in str(error.value)
    with pytest.raises(GanzooError, match="unconditional: class_idx does not apply") as error:
        unconditional.sample(2, class_idx=1)
    assert "--class" not in str(error.value)
    conditional.save(tmp_path / "cond")
    unconditional.save(tmp_path / "uncond")
    assert main(["generate", str(tmp_path / "cond"), "--seeds", "0-1", "--out", str(tmp_path / "a.png")]) == 1
    err = capsys.readouterr().err
    assert "choose one with --class (class0, class1)" in err and "class_idx" not in err
    assert main(["generate", str(tmp_path / "uncond"), "--class", "1", "--out", str(tmp_path / "b.png")]) == 1
    err = capsys.readouterr().err
    assert "unconditional: --class does not apply" in err and "class_idx" not in err
