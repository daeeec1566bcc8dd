"""Usage errors through the real console script: the usage line and one error line, exit 2;
help and version, exit 0; never a traceback (typer bundles its own click since 0.2x, so the
exceptions to catch are typer's, not the click package's)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import ganzoo_script

import ganzoo


def run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "100", **(env or {})}
    return subprocess.run([ganzoo_script(), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


# args -> the fragment the one error line must contain
USAGE_ERRORS = [
    (["genrate", "discs"], "No such command 'genrate'. Did you mean 'generate'?"),
    (["generate", "discs", "--seed", "3"], "No such option: --seed"),
    (["generate", "discs", "--trunc", "abc"], "Invalid value for '--trunc'"),
    (["finetune", "discs", "--data", "x", "--kimg", "abc", "--out", "y"], "Invalid value for '--kimg'"),
    (["info"], "Missing argument 'NAME'"),
    (["analyze", "filter", "discs"], "No such command 'filter'. Did you mean 'filters'?"),
    (["playground", "reproduce", "--num-seeds", "x"], "Invalid value for '--num-seeds'"),
    (["finetune", "discs", "--ada-target", "abc"], "Invalid value for '--ada-target'"),
    (["list", "--bogus"], "No such option: --bogus"),
    # Options that are required in one of two forms: refused the same way, before any work.
    (["generate", "discs"], "give exactly one of --out FILE.png or --outdir DIR"),
    (["generate", "discs", "--out", "x.png", "--outdir", "d"], "give exactly one of --out FILE.png or --outdir DIR"),
    (["pretrain"], "give --data, --resolution and --out (or --resume RUN_DIR)"),
    (["pretrain", "--data", "synth:discs", "--out", "x"], "give --data, --resolution and --out (or --resume RUN_DIR)"),
    (["finetune", "discs", "--out", "x"], "give SOURCE, --data and --out (or --resume RUN_DIR)"),
    (["finetune", "--data", "d", "--out", "x"], "give SOURCE, --data and --out (or --resume RUN_DIR)"),
]


@pytest.mark.parametrize("args, fragment", USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_usage_errors_are_the_usage_line_and_one_error_line(tmp_path, args, fragment):
    # A torch that cannot be imported: a usage error is found before anything heavy is imported.
    stub = tmp_path.parent / f"{tmp_path.name}-no-torch" / "torch"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('torch imported before the command line was checked')\n")
    done = run(*args, cwd=tmp_path, env={"PYTHONPATH": str(stub.parent)})
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


# Refused before any work (issue 31): a device this machine does not have, and sizes or counts
# out of range or beyond this machine's memory. args ("DATA": a folder of 8 images) -> fragment.
NO_DEVICE = "--device cuda:7: "  # no CUDA here; on a GPU machine, no eighth GPU
REFUSED = [
    (["generate", "discs", "--device", "cuda:7", "--out", "d.png"], NO_DEVICE),
    (["metrics", "discs", "--data", "DATA", "--device", "cuda:7", "--feature-extractor", "pixels"], NO_DEVICE),
    (["rank", "--target", "DATA", "--device", "cuda:7", "--feature-extractor", "pixels"], NO_DEVICE),
    (["merge", "discs", "stripes", "--device", "cuda:7", "--out", "m"], NO_DEVICE),
    (["synth", "primitives", "--n", "4", "--resolution", "100000", "--out", "s1"], "GiB of memory, this machine has"),
    (["synth", "primitives", "--n", "1000000000", "--resolution", "32", "--out", "s1"], "at most 100,000,000 images"),
    (["synth", "primitives", "--n", "4", "--resolution", "32", "--workers", "100000", "--out", "s1"], "at most 256"),
    (["generate", "discs", "--seeds", "0-100000000000", "--outdir", "o"], "a seed is at most 4294967295"),
    (["generate", "discs", "--seeds", "5-20000005", "--outdir", "o"], "at most 10,000,000 seeds"),
    (["metrics", "discs", "--data", "DATA", "--num-gen", "10000000000", "--feature-extractor", "pixels"],
     "at most 10,000,000 generated samples"),
    (["rank", "--target", "DATA", "--num-gen", "10000000000", "--feature-extractor", "pixels"],
     "at most 10,000,000 generated samples"),
    (["merge", "discs", "stripes", "--eval", "--num-gen", "100000000", "--out", "m"], "at most 10,000,000 generated samples"),
]


@pytest.mark.parametrize("args, fragment", REFUSED, ids=[" ".join(a[:3]) + " " + a[-3] for a, _ in REFUSED])
def test_refused_before_any_work_in_one_line(tmp_path, args, fragment):
    from helpers import random_images

    data = tmp_path / "DATA"
    random_images(data, 8, size=32)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    done = run(*[str(data) if a == "DATA" else a for a in args], cwd=tmp_path)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], done.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def _commands() -> list[list[str]]:
    import typer.main

    from ganzoo.cli import app

    out = []

    def walk(command, path):
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out.append(path)

    walk(typer.main.get_command(app), [])
    return out


def test_every_command_helps_in_one_style(tmp_path):
    """Issue 32 item 9: flags take no placeholder, values an upper-case one, arguments are named
    in capitals, and a default is said once, in the text, as "(default: X)"."""
    commands = _commands()
    assert ["generate"] in commands and ["analyze", "filters"] in commands and len(commands) > 15
    for command in commands:
        done = run(*command, "-h", cwd=tmp_path, env={"COLUMNS": "200"})
        text = done.stdout
        assert done.returncode == 0 and "Usage: ganzoo" in text, command
        for token in ("<bool>", "<path>", "<str>", "<int>", "<float>", "<list", "[default:", "(default "):
            assert token not in text, (command, token)
        usage = next(line for line in text.splitlines() if "Usage: ganzoo" in line)
        assert usage == usage.replace("{src}", "").replace("[source]", ""), usage  # arguments in capitals


def test_an_unknown_synthetic_kind_suggests_the_closest(tmp_path):
    done = run("synth", "primitive", "--n", "2", "--resolution", "16", "--out", "x", cwd=tmp_path)
    assert done.returncode == 1 and "Did you mean 'primitives'?" in done.stderr and "Traceback" not in done.stderr
