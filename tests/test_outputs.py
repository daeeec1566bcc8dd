"""Outputs are checked before the work and never lost: one rule for every ``--out``.

* A directory output (``--out DIR``, ``--outdir``): missing or an existing **empty** folder is
  written; a non-empty one needs ``--overwrite`` (training runs: ``--resume``); a file there is
  refused.
* A file output (``--out FILE``, ``--json``, ``--plot``): a directory there is refused, the suffix
  must be the format's (``generate --out g.jpg`` writes JPEG, ``synth --out s.tar`` is refused).
* A destination that cannot be written is one line (exit 1, no traceback), found before the
  model is loaded, the features extracted or the study run.

Read-only folders: ``chmod 0o555`` when the tests run as a normal user; as root, where permission
bits do not stop writes, the ``read_only`` fixture makes every create, rename, mkdir and write
under the folder raise ``EROFS`` in this process, as a read-only mount does. Subprocess tests use
a path under a regular file instead (unwritable for root too).
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from PIL import Image

from ganzoo._io import atomic_directory, atomic_path, atomic_write_text, check_output
from ganzoo.cli import main
from ganzoo.errors import OutputError
from helpers import random_images, tiny_gan

RUNNING_AS_ROOT = os.geteuid() == 0
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks, shared cores


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(folder)`` makes ``folder`` unwritable, as a read-only mount is (see the module doc)."""
    folders: list[Path] = []

    def inside(path) -> bool:
        if isinstance(path, int):
            return False
        target = Path(os.path.abspath(os.fsdecode(path)))
        return any(folder in target.parents for folder in folders)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    def patch() -> None:
        real_open, real_mkdir, real_replace, real_rename = os.open, os.mkdir, os.replace, os.rename
        real_unlink, real_rmdir, real_io_open = os.unlink, os.rmdir, io.open

        def fake_open(path, flags, *args, **kwargs):
            if flags & _WRITE_FLAGS and inside(path):
                refuse(path)
            return real_open(path, flags, *args, **kwargs)

        def fake_mkdir(path, *args, **kwargs):
            if inside(path):
                refuse(path)
            return real_mkdir(path, *args, **kwargs)

        def moving(real):
            def fake(src, dst, *args, **kwargs):
                if inside(src) or inside(dst):
                    refuse(dst)
                return real(src, dst, *args, **kwargs)

            return fake

        def removing(real):
            def fake(path, *args, **kwargs):
                if inside(path):
                    refuse(path)
                return real(path, *args, **kwargs)

            return fake

        def fake_io_open(file, mode="r", *args, **kwargs):
            if any(c in mode for c in "wax+") and inside(file):
                refuse(file)
            return real_io_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(os, "open", fake_open)
        monkeypatch.setattr(os, "mkdir", fake_mkdir)
        monkeypatch.setattr(os, "replace", moving(real_replace))
        monkeypatch.setattr(os, "rename", moving(real_rename))
        monkeypatch.setattr(os, "unlink", removing(real_unlink))
        monkeypatch.setattr(os, "remove", removing(real_unlink))
        monkeypatch.setattr(os, "rmdir", removing(real_rmdir))
        monkeypatch.setattr(io, "open", fake_io_open)
        monkeypatch.setattr(builtins, "open", fake_io_open)

    def make(folder) -> Path:
        folder = Path(folder).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        if RUNNING_AS_ROOT:
            if not folders:
                patch()
        else:
            folder.chmod(0o555)
        folders.append(folder)
        return folder

    yield make
    monkeypatch.undo()
    for folder in folders:
        if folder.exists():
            folder.chmod(0o755)


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> str:
    """The one error line: the last on stderr, the only ``error:`` line, no traceback (a progress
    bar drawn before the work started may precede it)."""
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in err, err
    return errors[0]


@pytest.fixture
def ckpt(tmp_path):
    return tiny_gan().save(tmp_path / "ckpt")


# ------------------------------------------------------------------------------------------------
# The rule itself


def test_dir_outputs_missing_or_empty_are_written_non_empty_need_overwrite(tmp_path):
    assert check_output(tmp_path / "new" / "deeper", "dir") == tmp_path / "new" / "deeper"
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", "dir")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(OutputError, match=r"full: already exists and is not empty \(use --overwrite to replace it\)"):
        check_output(tmp_path / "full", "dir")
    check_output(tmp_path / "full", "dir", overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="file: exists and is not a directory"):
        check_output(tmp_path / "file", "dir", overwrite=True)
    with pytest.raises(OutputError, match=r"cannot write \(.*file is not a directory\)"):
        check_output(tmp_path / "file" / "sub", "dir")
    # --overwrite never replaces the folder a command runs in (or one above it).
    os.chdir(tmp_path / "full")
    try:
        with pytest.raises(OutputError, match="current folder"):
            check_output(Path("."), "dir", overwrite=True)
    finally:
        os.chdir(tmp_path)


def test_file_outputs_suffix_directory_and_parents(tmp_path):
    check_output(tmp_path / "a" / "b" / "r.json", suffixes=(".json",))
    with pytest.raises(OutputError, match=r"r\.txt: \.txt is not a format this output is written in \(use a \.json name\)"):
        check_output(tmp_path / "r.txt", suffixes=(".json",))
    with pytest.raises(OutputError, match="no suffix"):
        check_output(tmp_path / "r", suffixes=(".json",))
    (tmp_path / "d.json").mkdir()
    with pytest.raises(OutputError, match=r"d\.json: is a directory"):
        check_output(tmp_path / "d.json", suffixes=(".json",), overwrite=True)
    (tmp_path / "f.json").write_text("{}")
    with pytest.raises(OutputError, match="already exists"):
        check_output(tmp_path / "f.json")
    check_output(tmp_path / "f.json", overwrite=True)
    with pytest.raises(OutputError, match="f.json is not a directory"):
        check_output(tmp_path / "f.json" / "r.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json", "f.json"]  # the checks leave nothing


def test_unwritable_destination_is_found_before_the_work(tmp_path, read_only):
    ro = read_only(tmp_path / "ro")
    for args in [(ro / "r.json",), (ro / "sub" / "deeper" / "r.json",), (ro / "run", "dir")]:
        with pytest.raises(OutputError, match=r"cannot write.*\((Read-only file system|Permission denied)\)") as caught:
            check_output(*args)
        assert str(caught.value).startswith(str(args[0])) and "\n" not in str(caught.value)
        assert isinstance(caught.value, OSError)  # code that catches OSError around writes still does
    # An empty folder is written in place: only it must take files, not its parent.
    (tmp_path / "inner").mkdir()
    read_only(tmp_path / "inner-parent")
    check_output(tmp_path / "inner", "dir")


def test_atomic_writers_turn_failed_writes_into_one_line(tmp_path, read_only, monkeypatch):
    ro = read_only(tmp_path / "ro")
    with pytest.raises(OutputError, match=r"r\.json: cannot write"):
        atomic_write_text(ro / "r.json", "{}")
    with pytest.raises(OutputError, match="d: cannot write"):
        with atomic_directory(ro / "d") as tmp:
            (tmp / "x").write_text("x")
    # A full disk while the temporary file is filled: one line naming the output, nothing left.
    with pytest.raises(OutputError, match=r"g\.png: cannot write \(No space left on device\)"):
        with atomic_path(tmp_path / "g.png") as tmp:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
    # Errors that are not about the output pass through unchanged.
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "g.png"):
            open(tmp_path / "missing-input")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro"]


def test_atomic_directory_writes_into_an_existing_empty_folder(tmp_path):
    (tmp_path / "out").mkdir()
    with atomic_directory(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("a")
        (tmp / "sub").mkdir()
        assert list((tmp_path / "out").iterdir()) == [tmp]  # staged inside, moved up at the end
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "sub"]
    # A failure leaves it empty.
    (tmp_path / "again").mkdir()
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "again") as tmp:
            (tmp / "a.txt").write_text("a")
            raise RuntimeError("boom")
    assert list((tmp_path / "again").iterdir()) == []


# ------------------------------------------------------------------------------------------------
# The commands


def test_generate_writes_jpeg_for_jpg_and_refuses_other_suffixes(tmp_path, capsys, ckpt, monkeypatch):
    code, _, err = run(capsys, "generate", ckpt, "--seeds", "0-3", "--out", tmp_path / "g.jpg")
    assert code == 0, err
    assert (tmp_path / "g.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes
    with Image.open(tmp_path / "g.jpg") as image:
        assert image.format == "JPEG" and image.size == (32, 32)
    code, _, err = run(capsys, "generate", ckpt, "--seeds", "0-3", "--out", tmp_path / "g2.jpeg")
    assert code == 0 and (tmp_path / "g2.jpeg").read_bytes() == (tmp_path / "g.jpg").read_bytes()  # same bytes

    import ganzoo.api

    monkeypatch.setattr(ganzoo.api, "load", lambda *a, **k: pytest.fail("loaded before the output was checked"))
    for out, message in [(tmp_path / "g.gif", "g.gif: .gif is not a format"), (tmp_path / "g", "no suffix"),
                         (tmp_path, "is a directory"), (tmp_path / "g.jpg" / "x.png", "g.jpg is not a directory")]:  # fmt: skip
        code, _, err = run(capsys, "generate", ckpt, "--seeds", "0-3", "--out", out)
        assert code == 1 and message in one_line(err), err
    assert not (tmp_path / "g.gif").exists() and not (tmp_path / "g").exists()


def test_generate_outdir_follows_the_rule(tmp_path, capsys, ckpt):
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "generate", ckpt, "--seeds", "1,2", "--outdir", tmp_path / "empty")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["seed0001.png", "seed0002.png"]
    code, _, err = run(capsys, "generate", ckpt, "--seeds", "3", "--outdir", tmp_path / "empty")
    assert code == 1 and "not empty (use --overwrite to replace it)" in one_line(err)
    code, _, err = run(capsys, "generate", ckpt, "--seeds", "3", "--outdir", tmp_path / "empty", "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["seed0003.png"]


def test_generate_to_a_read_only_folder_is_one_line_before_loading(tmp_path, capsys, ckpt, read_only, monkeypatch):
    ro = read_only(tmp_path / "ro")
    import ganzoo.api

    monkeypatch.setattr(ganzoo.api, "load", lambda *a, **k: pytest.fail("loaded before the output was checked"))
    for option, out in [("--out", ro / "g.png"), ("--outdir", ro / "seeds")]:
        code, _, err = run(capsys, "generate", ckpt, option, out)
        assert code == 1 and one_line(err).startswith(f"error: {out}: cannot write"), err


def test_synth_refuses_other_archive_formats_and_writes_into_an_empty_folder(tmp_path, capsys):
    for name, other in [("s.tar", ".tar"), ("s.tar.gz", ".tar.gz"), ("s.png", ".png")]:
        code, _, err = run(capsys, "synth", "pinknoise", "--n", "2", "--resolution", "16", "--out", tmp_path / name)
        assert code == 1 and f"synth writes a folder or a .zip, not a {other} file" in one_line(err), err
        assert not (tmp_path / name).exists()
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "synth", "pinknoise", "--n", "2", "--resolution", "16", "--out", tmp_path / "empty")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["00000000.png", "00000001.png"]
    code, _, err = run(capsys, "synth", "pinknoise", "--n", "2", "--resolution", "16", "--out", tmp_path / "empty")
    assert code == 1 and "already exists and is not empty" in one_line(err)


def test_playground_reproduce_writes_into_an_empty_folder(tmp_path, capsys, monkeypatch):
    from ganzoo.playground import report, study

    monkeypatch.setattr(study, "QUICK", study.StudyConfig(pretrain_steps=150, finetune_steps=20, checkpoint_every=50,
                                                          eval_every=10, w1_samples=64, metric_samples=64))  # fmt: skip
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "playground", "reproduce", "--quick", "--out", tmp_path / "empty", "--json", "-")
    assert code == 0, err
    assert {"results.json", "report.md"} <= {p.name for p in (tmp_path / "empty").iterdir()}
    code, _, err = run(capsys, "playground", "combine", tmp_path / "empty", "--out", tmp_path / "empty")
    assert code == 1 and "not empty (use --overwrite" in one_line(err)

    monkeypatch.setattr(report, "run_seed", lambda *a, **k: pytest.fail("the study ran before the output was checked"))
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "playground", "reproduce", "--quick", "--out", tmp_path / "file" / "run")
    assert code == 1 and "file is not a directory" in one_line(err)


@pytest.fixture
def target(tmp_path):
    random_images(tmp_path / "target", 8, size=16)
    return tmp_path / "target"


def _no_features(monkeypatch):
    import ganzoo.metrics.cache as cache

    monkeypatch.setattr(cache, "dataset_features", lambda *a, **k: pytest.fail("features computed before the output check"))


def test_rank_metrics_analyze_check_their_outputs_before_computing(tmp_path, capsys, ckpt, target, read_only, monkeypatch):
    ro = read_only(tmp_path / "ro")
    _no_features(monkeypatch)
    rank_args = ["rank", "--target", target, "--candidates", ckpt, "--num-gen", "8", "--feature-extractor", "pixels"]
    metrics_args = ["metrics", ckpt, "--data", target, "--num-gen", "8", "--feature-extractor", "pixels"]
    import ganzoo.analysis

    monkeypatch.setattr(ganzoo.analysis, "filter_report", lambda *a, **k: pytest.fail("computed before the check"))
    monkeypatch.setattr(ganzoo.analysis, "distance", lambda *a, **k: pytest.fail("computed before the check"))
    cases = [
        (rank_args + ["--json", ro / "r.json"], "r.json: cannot write"),
        (rank_args + ["--plot", ro / "r.png"], "r.png: cannot write"),
        (rank_args + ["--plot", tmp_path / "r.svg"], "r.svg: .svg is not a format"),
        (metrics_args + ["--json", ro / "m.json"], "m.json: cannot write"),
        (metrics_args + ["--json", tmp_path], "is a directory"),
        (["analyze", "filters", ckpt, "--json", ro / "f.json"], "f.json: cannot write"),
        (["analyze", "filters", ckpt, "--plot", tmp_path / "f.jpg"], "f.jpg: .jpg is not a format"),
        (["analyze", "distance", ckpt, ckpt, "--json", ro / "d.json"], "d.json: cannot write"),
    ]
    for args, message in cases:
        code, _, err = run(capsys, *args)
        assert code == 1 and message in one_line(err), (args, err)


def test_rank_results_survive_a_read_only_feature_cache(tmp_path, ckpt, target, read_only, monkeypatch):
    from ganzoo.ranking import rank

    cache = read_only(tmp_path / "cache")
    monkeypatch.setenv("GANZOO_CACHE", str(cache))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = rank(target, candidates=[str(ckpt)], num_gen=8, feature_extractor="pixels", progress=False,
                      json_out=tmp_path / "r.json")  # fmt: skip
    assert result.candidates[0].fid is not None
    assert json.loads((tmp_path / "r.json").read_text())["candidates"][0]["fid"] == result.candidates[0].fid
    assert any("feature cache not written" in str(w.message) for w in caught)


def test_rank_strict_is_strict_when_the_target_features_are_cached(tmp_path, capsys, ckpt, target):
    (target / "broken.png").write_bytes(b"not an image")
    args = ["rank", "--target", target, "--candidates", ckpt, "--num-gen", "8", "--feature-extractor", "pixels"]
    code, _, err = run(capsys, *args, "--strict")
    assert code == 1 and "1 unreadable file(s): broken.png" in one_line(err)
    code, _, err = run(capsys, *args)  # not strict: a warning, and the target's features are cached
    assert code == 0 and "skipped 1 unreadable file(s): broken.png" in err
    code, _, err = run(capsys, *args, "--strict")  # a cache hit must not bypass --strict
    assert code == 1 and "1 unreadable file(s): broken.png" in one_line(err)
    code, _, err = run(capsys, "metrics", ckpt, "--data", target, "--num-gen", "8", "--feature-extractor", "pixels",
                       "--strict")  # fmt: skip
    assert code == 1 and "1 unreadable file(s): broken.png" in one_line(err)


def test_training_runs_check_out_before_the_work(tmp_path, ckpt, target, read_only, monkeypatch):
    from ganzoo.cocktail import merge
    from ganzoo.train import runner

    monkeypatch.setattr(runner, "_load_source", lambda *a, **k: pytest.fail("source loaded before --out was checked"))
    ro = read_only(tmp_path / "ro")
    with pytest.raises(OutputError, match="run: cannot write"):
        runner.finetune(ckpt, target, ro / "run", kimg=0.01)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(OutputError, match="not empty .choose another --out, or continue it with --resume"):
        runner.finetune(ckpt, target, tmp_path / "used", kimg=0.01)
    monkeypatch.setattr(sys.modules["ganzoo.cocktail.stages"], "load_sources", lambda *a, **k: pytest.fail("sources loaded before --out was checked"))
    with pytest.raises(OutputError, match="duo: cannot write"):
        merge([str(ckpt), str(ckpt)], ro / "duo", root_kimg=0.01, merge_kimg=0.01)


def test_convert_writes_into_an_empty_folder(tmp_path, capsys, shared_fixtures):
    tiny32 = shared_fixtures / "stylegan2-ada" / "tiny32" / "tiny32-snapshot.pkl"
    (tmp_path / "ckpt").mkdir()
    code, _, err = run(capsys, "convert", tiny32, tmp_path / "ckpt")
    assert code == 0, err
    assert (tmp_path / "ckpt" / "config.json").is_file()
    code, _, err = run(capsys, "convert", tiny32, tmp_path / "ckpt")
    assert code == 1 and "already exists and is not empty (use --overwrite" in one_line(err)


def test_export_checks_its_file_before_reading(tmp_path, capsys, ckpt):
    code, _, err = run(capsys, "export", ckpt, tmp_path / "g.safetensors")
    assert code == 1 and ".safetensors is not a format this output is written in (use a .pt or .pth name)" in one_line(err)


def test_push_without_network_is_one_line_naming_endpoint_and_repo(capsys, ckpt, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_test_not_a_token")
    code, _, err = run(capsys, "push", ckpt, "me/tiny", "--no-samples")
    line = one_line(err)
    assert code == 1 and "me/tiny" in line and f"http://127.0.0.1:{port}" in line and "unreachable" in line, err


def test_console_script_output_errors_are_one_line(tmp_path, ckpt):
    """Through a real process: a path under a regular file cannot be written, also as root."""
    (tmp_path / "file").write_text("x")
    for args in [["generate", str(ckpt), "--seeds", "0-3", "--out", str(tmp_path / "file" / "g.png")],
                 ["generate", str(ckpt), "--seeds", "0-3", "--out", str(tmp_path / "g.webp")],
                 ["synth", "pinknoise", "--n", "2", "--resolution", "16", "--out", str(tmp_path / "s.tar")]]:  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "file"]


def test_an_unwrapped_write_on_a_full_disk_is_still_one_line(tmp_path, capsys, ckpt, monkeypatch):
    """E.g. the training log's append: main() turns ENOSPC/EROFS/EDQUOT into one line, exit 1."""
    import ganzoo.api

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "run" / "log.jsonl"))

    monkeypatch.setattr(ganzoo.api, "load", full_disk)
    code, _, err = run(capsys, "generate", ckpt, "--out", tmp_path / "g.png")
    assert code == 1 and one_line(err) == f"error: {tmp_path / 'run' / 'log.jsonl'}: cannot write (No space left on device)"

    def bug(*args, **kwargs):
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    monkeypatch.setattr(ganzoo.api, "load", bug)
    with pytest.raises(OSError, match="Bad file descriptor"):  # not an output problem: a bug, not hidden
        main(["generate", str(ckpt), "--out", str(tmp_path / "g.png")])
