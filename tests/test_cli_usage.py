"""Usage errors through the real console script: the usage line and one error line, exit 2;
help and version, exit 0; never a traceback (typer bundles its own click since 0.2x, so the
exceptions to catch are typer's, not the click package's)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ganzoo


def _script() -> str:
    """The installed ``ganzoo`` console script (beside this interpreter, else on PATH)."""
    beside = Path(sys.executable).with_name("ganzoo")
    path = str(beside) if beside.is_file() else shutil.which("ganzoo")
    assert path, "the ganzoo console script is not installed (pip install -e .)"
    return path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "100"}
    return subprocess.run([_script(), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


# args -> the fragment the one error line must contain
USAGE_ERRORS = [
    (["genrate", "discs"], "No such command 'genrate'. Did you mean 'generate'?"),
    (["generate", "discs", "--seed", "3"], "No such option: --seed"),
    (["generate", "discs", "--trunc", "abc"], "Invalid value for '--trunc'"),
    (["finetune", "discs", "--data", "x", "--kimg", "abc", "--out", "y"], "Invalid value for '--kimg'"),
    (["info"], "Missing argument 'name'"),
    (["analyze", "filter", "discs"], "No such command 'filter'. Did you mean 'filters'?"),
    (["playground", "reproduce", "--num-seeds", "x"], "Invalid value for '--num-seeds'"),
    (["finetune", "discs", "--ada-target", "abc"], "Invalid value for '--ada-target'"),
    (["list", "--bogus"], "No such option: --bogus"),
]


@pytest.mark.parametrize("args, fragment", USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_usage_errors_are_the_usage_line_and_one_error_line(tmp_path, args, fragment):
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Usage: ganzoo"), done.stderr
    assert lines[1].startswith("error: ") and fragment in lines[1], lines[1]
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("args", [[], ["-h"], ["--help"], ["generate", "-h"], ["analyze"], ["analyze", "filters", "-h"]])
def test_help(tmp_path, args):
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "Usage: ganzoo" in done.stdout and done.stderr == ""


def test_version(tmp_path):
    done = run("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, f"ganzoo {ganzoo.__version__}", "")


def test_a_bare_json_says_what_it_takes_now(tmp_path):
    done = run("list", "--json", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("error: Option '--json' requires an argument.") and "- to print it to stdout" in line, line


def test_renamed_options_are_hidden_from_help(tmp_path):
    help_text = run("finetune", "-h", cwd=tmp_path).stdout
    assert "--ada-target" in help_text and "--xflip" in help_text
    assert "--target" not in help_text.replace("--ada-target", "") and "--mirror" not in help_text
    help_text = run("playground", "reproduce", "-h", cwd=tmp_path).stdout
    assert "--num-seeds" in help_text and "--seeds" not in help_text.replace("--num-seeds", "")
