"""What a new user tripped over (issue 32), each through the installed ``ganzoo`` console script,
offline, with temporary caches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import ganzoo_script


@pytest.fixture
def run(tmp_path):
    """``run(*args)``: the console script in ``tmp_path``, offline, with its own caches."""
    base = {**os.environ, "HF_HUB_OFFLINE": "1", "GANZOO_CACHE": str(tmp_path / "cache"),
           "HF_HOME": str(tmp_path / "hf"), "COLUMNS": "80"}  # fmt: skip
    base.pop("TORCHINDUCTOR_CACHE_DIR", None)  # a user's choice; tests/test_compile.py sets one for the session

    def run(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run([ganzoo_script(), *args], cwd=tmp_path, env={**base, **(env or {})}, capture_output=True,
                              text=True, timeout=600, check=False)  # fmt: skip
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    return run


@pytest.mark.parametrize("out", ["w", "w.pt"])  # BigGAN's release folder, and the single file of every family
def test_export_then_convert_keeps_class_names_and_license(run, tmp_path, out):
    exported = run("export", "biggan-starter", out)
    sidecar = tmp_path / out / "ganzoo.json" if out == "w" else tmp_path / "w.pt.ganzoo.json"
    assert json.loads(sidecar.read_text()) == {"architecture": "biggan", "license": "apache-2.0",
                                               "class_names": ["discs", "stripes", "primitives-ps"]}  # fmt: skip
    assert "error" not in exported.stderr
    run("convert", out, "back")
    config = json.loads((tmp_path / "back" / "config.json").read_text())
    assert config["class_names"] == ["discs", "stripes", "primitives-ps"] and config["license"] == "apache-2.0"
    assert config["source"]["sidecar"] == sidecar.name
    if out == "w":  # a class by name works on the converted model
        run("generate", "back", "--class", "discs", "--seeds", "0-1", "--out", "discs.png")
        assert (tmp_path / "discs.png").is_file()


def test_convert_takes_class_names_and_refuses_a_wrong_count(run, tmp_path):
    run("export", "biggan-starter", "w.pt")
    (tmp_path / "w.pt.ganzoo.json").unlink()  # no sidecar: only what convert is given
    run("convert", "w.pt", "named", "--class-names", "a, b,c", "--license", "mit")
    config = json.loads((tmp_path / "named" / "config.json").read_text())
    assert config["class_names"] == ["a", "b", "c"] and config["license"] == "mit"
    wrong = run("convert", "w.pt", "wrong", "--class-names", "a,b", check=False)
    assert wrong.returncode == 1 and wrong.stderr.strip().splitlines() == [
        "error: w.pt: 2 class names for a generator with 3 classes"]
    assert not (tmp_path / "wrong").exists()
    twice = run("convert", "w.pt", "twice", "--class-names", "a,a,b", check=False)
    assert twice.returncode == 1 and "distinct" in twice.stderr and "Traceback" not in twice.stderr


def test_list_fits_80_columns_and_wide_shows_every_column(run):
    from rich.cells import cell_len

    from ganzoo.registry import list_models

    narrow = run("list").stdout.splitlines()
    assert all(cell_len(text) <= 80 for text in narrow)
    names = [text.split()[0] for text in narrow[2:-1]]
    assert names == list_models()  # one line a model, its name whole
    assert narrow[-1] == "left out at 80 columns: aliases, dataset, D, get (--wide shows them)"
    assert narrow[0].split() == ["name", "res", "license"]
    assert any(text.split()[-1] == "nvidia-source-code-license-nc" for text in narrow)
    few = run("list", "disc*").stdout.splitlines()  # shorter names: more columns fit
    assert few[0].split() == ["name", "res", "D", "license", "get"] and few[2].split()[-1] == "bundled"
    wide = run("list", "--wide").stdout.splitlines()
    assert wide[0].split() == ["name", "aliases", "res", "dataset", "D", "license", "get"]
    assert len(wide) == len(list_models()) + 2 and any("cat, afhq-cat, afhqcat" in text for text in wide)


def test_inductor_default_in_its_variable_counts_as_unset(monkeypatch, tmp_path):
    """What broke ``--compile``'s cache folder: inductor writes its default into
    ``TORCHINDUCTOR_CACHE_DIR`` when first imported; ganzoo takes that as unset, a user's as set."""
    from ganzoo.compile import _inductor_default_cache_dir, use_ganzoo_cache_dir

    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", _inductor_default_cache_dir())
    assert use_ganzoo_cache_dir() == str(tmp_path / "cache" / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert use_ganzoo_cache_dir() == str(tmp_path / "mine")


def test_the_cuda_probe_log_line_is_dropped_once_compiling():
    import logging

    import torch

    from ganzoo.compile import compile_network, unavailable_reason

    assert unavailable_reason("cpu") is None  # CI has a C++ compiler: nothing skips
    compile_network(torch.nn.Linear(2, 2))  # attaches the filter (compiles on first call only)
    logger = logging.getLogger("torch.utils.cpp_extension")
    seen: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    try:
        logger.warning("No CUDA runtime is found, using CUDA_HOME='/usr/local'")
        logger.warning("another warning")
    finally:
        logger.removeHandler(handler)
    assert seen == ["another warning"]


@pytest.mark.slow  # a cold inductor compilation: ~45 s on 2 cores
def test_compile_caches_under_ganzoo_and_prints_no_torch_log_line(run, tmp_path):
    """``--compile`` keeps inductor's cache in ``<ganzoo cache>/inductor`` (not inductor's default
    under ``$TMPDIR``, which inductor writes into its variable on import), and torch's own log
    line about CUDA on a CPU machine does not reach the user."""
    from helpers import tiny_gan

    tiny_gan(with_d=False).save(tmp_path / "tiny")  # 16x16: few kernels to compile
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = run("generate", "tiny", "--compile", "--seeds", "0", "--out", "one.png", env={"TMPDIR": str(tmp)})
    assert done.stderr == "", done.stderr
    assert any(p.suffix == ".cpp" for p in (tmp_path / "cache" / "inductor").rglob("*"))  # inductor's C++ code cache
    # Only the precompiled headers, whose place inductor fixes (its default folder), stay there.
    elsewhere = [p for p in tmp.rglob("*") if p.is_file() and "precompiled_headers" not in p.parts]
    assert elsewhere == []


@pytest.fixture
def images(tmp_path):
    from pathlib import Path

    from helpers import random_images

    random_images(Path(tmp_path / "data"), 8, size=32)
    return "data"


def test_training_logs_between_ticks_and_writes_every_file_alike(run, tmp_path, images):
    """Piped output gets a line at least every GANZOO_PROGRESS_SECONDS (30 s by default) between
    the 4-kimg ticks; snapshot weights get the permissions of every other file (not 0600)."""
    done = run("finetune", "discs", "--data", images, "--kimg", "0.064", "--snap", "0.032", "--batch", "4",
               "--aug", "none", "--out", "run", env={"GANZOO_PROGRESS_SECONDS": "0.05"})  # fmt: skip
    lines = [text for text in done.stdout.splitlines() if text.startswith("finetune: ")]
    assert len(lines) >= 3, done.stdout  # one tick (the end) in this run: the others came with time
    modes = {path.relative_to(tmp_path / "run").as_posix(): path.stat().st_mode & 0o777
             for path in (tmp_path / "run").rglob("*") if path.is_file()}  # fmt: skip
    assert any(name.startswith("snapshots/") and name.endswith(".safetensors") for name in modes)
    assert set(modes.values()) == {0o666 & ~_umask()}, modes
    bad = run("finetune", "discs", "--data", images, "--out", "x", env={"GANZOO_PROGRESS_SECONDS": "soon"}, check=False)
    assert bad.returncode == 1 and bad.stderr.strip() == "error: GANZOO_PROGRESS_SECONDS='soon': give a number of seconds above 0"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_ctrl_c_says_interrupted_once(tmp_path, images):
    """Ctrl-C in training: one line on stderr saying what the run keeps, exit 130."""
    import signal
    import time

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GANZOO_CACHE": str(tmp_path / "cache"), "GANZOO_PROGRESS_SECONDS": "0.05"}
    process = subprocess.Popen([ganzoo_script(), "finetune", "discs", "--data", images, "--kimg", "50", "--batch", "4",
                                "--aug", "none", "--out", "run"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        while not process.stdout.readline().startswith("finetune: "):  # training has started
            assert process.poll() is None, process.stderr.read()
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted at ") and "resumes from its start" in lines[0], err


def test_merge_takes_an_adafm_finetuned_model(run, tmp_path, images):
    """An AdaFM-finetuned source merges: folded into its plain family first (as push and export
    publish it), so stage 1's rooted models average; nothing of a failed merge is left behind."""
    run("finetune", "discs", "--data", images, "--recipe", "adafm", "--kimg", "0.016", "--batch", "4", "--aug", "none",
        "--out", "A")  # fmt: skip
    assert json.loads((tmp_path / "A" / "config.json").read_text())["architecture"] == "stylegan2-adafm"
    run("merge", "A", "stripes", "--root-kimg", "0.008", "--merge-kimg", "0.008", "--batch", "4", "--out", "M")
    config = json.loads((tmp_path / "M" / "config.json").read_text())
    assert config["architecture"] == "stylegan2" and config["class_names"] == ["A", "stripes"]


def test_threads_come_from_the_option_the_environment_or_the_idle_cores(run, tmp_path, images):
    """Every long command takes --threads N (and GANZOO_THREADS); training records the count
    and where it came from in run.json, and a resume with another count says so there too."""
    import ganzoo._threads

    def finetune(out: str, *extra: str, env: dict | None = None):
        return run("finetune", "discs", "--data", images, "--kimg", "0.008", "--batch", "4", "--aug", "none",
                   "--out", out, *extra, env=env)  # fmt: skip

    finetune("a", "--threads", "1")
    assert json.loads((tmp_path / "a" / "run.json").read_text())["threads"] == {"count": 1, "from": "--threads"}
    finetune("b", env={"GANZOO_THREADS": "2"})
    assert json.loads((tmp_path / "b" / "run.json").read_text())["threads"] == {"count": 2, "from": "GANZOO_THREADS"}
    finetune("c", env={"GANZOO_THREADS": ""})
    default = json.loads((tmp_path / "c" / "run.json").read_text())["threads"]
    assert default["from"].startswith("cores idle at start") and 1 <= default["count"] <= ganzoo._threads.usable_cores()
    run("finetune", "--resume", "a", "--kimg", "0.016", "--threads", "2")
    info = json.loads((tmp_path / "a" / "run.json").read_text())
    assert info["threads"] == {"count": 2, "from": "--threads"} and info["resumed"][-1]["changed"]["threads"]["count"] == 2
    run("generate", "discs", "--seeds", "0", "--out", "g.png", "--threads", "1")
    zero = run("generate", "discs", "--seeds", "0", "--out", "z.png", "--threads", "0", check=False)
    assert zero.returncode == 2 and "--threads" in zero.stderr
    bad = run("generate", "discs", "--seeds", "0", "--out", "z.png", env={"GANZOO_THREADS": "many"}, check=False)
    assert bad.returncode == 1 and bad.stderr.strip() == "error: GANZOO_THREADS: give a number of threads of at least 1, not 'many'"


@pytest.mark.parametrize("cores, idle, expected", [(2, 1.9, 2), (2, 1.2, 1), (2, 0.3, 1), (2, 0.0, 1), (16, 12.6, 13),
                                                  (4, 7.5, 4)])  # fmt: skip
def test_the_default_is_the_cores_idle_at_start(monkeypatch, cores, idle, expected):
    import ganzoo._threads as threads

    monkeypatch.delenv("GANZOO_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    monkeypatch.setattr(threads, "idle_cores", lambda: idle)
    assert threads.choose_threads().count == expected


@pytest.mark.parametrize("cores, load, expected", [(2, 0.1, 2), (2, 1.6, 1), (2, 7.0, 1), (16, 3.4, 13)])
def test_without_proc_stat_the_load_average_decides(monkeypatch, cores, load, expected):
    import ganzoo._threads as threads

    monkeypatch.delenv("GANZOO_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    monkeypatch.setattr(threads, "idle_cores", lambda: None)
    monkeypatch.setattr(threads, "load_average", lambda: load)
    assert threads.choose_threads().count == expected


def test_idle_cores_sees_a_busy_core():
    """A process spinning on one core during the sample: at least half a core less is idle than
    the machine has (the other cores may be busy with anything)."""
    import ganzoo._threads as threads

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)
        idle = threads.idle_cores(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert idle is not None and idle <= threads._cpu_times()[2] - 0.5


def test_unreadable_files_follow_one_rule_in_every_command(run, tmp_path, images):
    """finetune and rank (and metrics) alike: the whole set is read, every bad file is named in one
    line (skipped with a warning; with --strict an error, exit 1, nothing trained or written)."""
    (tmp_path / images / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / images / "notes.jpg").write_bytes(b"\xff\xd8\xff truncated")
    named = "2 unreadable file(s): broken.jpg (not a recognised image), notes.jpg (not a recognised image)"
    commands = {
        "finetune": ["finetune", "discs", "--data", images, "--kimg", "0.004", "--batch", "4", "--aug", "none",
                     "--out", "run"],
        # metrics reads its --data as rank reads its target (tests/test_outputs.py runs both)
        "rank": ["rank", "--target", images, "--candidates", "discs", "--num-gen", "8", "--feature-extractor", "pixels"],
    }  # fmt: skip
    for name, args in commands.items():
        strict = run(*args, "--strict", check=False)
        assert strict.returncode == 1, (name, strict.stderr)
        errors = [text for text in strict.stderr.splitlines() if text.startswith("error:")]
        assert errors == [f"error: {images}: {named} (without --strict they are skipped with a warning)"], name
        assert "Traceback" not in strict.stderr
        assert name != "finetune" or not (tmp_path / "run").exists()  # nothing trained, nothing written
        skipped = run(*args)
        assert f"warning: {images}: skipped {named}" in skipped.stderr.splitlines(), (name, skipped.stderr)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["data"]["num_images"] == 8


def test_rank_says_when_its_features_or_candidates_cannot_judge(run, tmp_path, images):
    """Offline, pixel features, only the toy starters: the table, the line below it, the JSON and
    the report say the ranking is of low confidence and why; the recommendation is softened."""
    done = run("rank", "--target", images, "--num-gen", "8", "--feature-extractor", "pixels", "--json", "r.json",
               "--report", "r.html")  # fmt: skip
    shown = " ".join(done.stdout.split())
    assert "low confidence: pixel features compare colours and layout" in shown
    assert "low confidence: only the bundled starter models were ranked" in shown
    assert "least far from the target, with low confidence:" in shown and "recommended source" not in shown
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["confidence"] == "low" and len(record["caveats"]) >= 2
    assert record["recipe_hint"].startswith("low confidence (see the caveats): if you try ")
    page = (tmp_path / "r.html").read_text()
    assert "with <b>low confidence</b>" in page and "only the bundled starter models" in page


def test_analyze_filters_never_cuts_a_model_name(run):
    """Where the model columns do not fit, they are numbered and a key below names each model."""
    names = ["discs-stylegan2-32", "stripes-stylegan2-32"]
    narrow = run("analyze", "filters", *names, env={"COLUMNS": "60"}).stdout.splitlines()
    assert [text.strip() for text in narrow[-2:]] == [f"#1: {names[0]}", f"#2: {names[1]}"]
    wide = run("analyze", "filters", *names, env={"COLUMNS": "200"}).stdout
    assert all(name in wide for name in names) and "#1:" not in wide
