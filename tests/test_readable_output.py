"""Logs and progress people can read (issue 13, section 7): plain progress lines when output is
not a terminal, generate's progress and grid limit, the rank table at 80 columns, export's
--overwrite, convert --as checks, "did you mean", and `ganzoo cache`."""

from __future__ import annotations

import pytest
import torch

from ganzoo.cli import main
from helpers import tiny_gan

pytestmark = pytest.mark.usefixtures("one_thread")


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code, err, message):
    assert code == 1, err
    assert err.startswith("error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# ------------------------------------------------------------------------------------------------
# export --overwrite


def test_export_refuses_an_existing_file_without_overwrite(tmp_path, capsys):
    tiny_gan().save(tmp_path / "ckpt")
    out = tmp_path / "out.pt"
    out.write_bytes(b"keep me")
    code, _, err = run(capsys, "export", tmp_path / "ckpt", out)
    one_line_error(code, err, "already exists")
    assert "--overwrite" in err and out.read_bytes() == b"keep me"
    code, _, err = run(capsys, "export", tmp_path / "ckpt", out, "--overwrite")
    assert code == 0, err
    assert set(torch.load(out, weights_only=True)) == {"G_ema", "D", "init_kwargs", "architecture"}


# ------------------------------------------------------------------------------------------------
# Progress when output is not a terminal (capsys: not a terminal): plain lines, no bar


BAR_CHARS = ("━", "╸", "╺", "\r", "\x1b")


def test_finetune_prints_one_plain_line_per_tick(tmp_path, capsys):
    from ganzoo.train.runner import finetune

    data = (torch.rand([8, 3, 16, 16], generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    finetune(tiny_gan(seed=1), data, tmp_path / "run", recipe="full", kimg=0.016, batch=4, seed=0, snap=0.008,
             tick_kimg=0.004, progress=True)  # fmt: skip
    out = capsys.readouterr().out
    assert not any(c in out for c in BAR_CHARS), out
    lines = [line for line in out.splitlines() if line.startswith("finetune: ")]
    assert len(lines) == 4, out  # ticks at 4, 8, 12 and 16 images
    for line in lines:
        for word in (" kimg (", " img/s", "loss_G ", "loss_D ", "r_t ", "  p "):
            assert word in line, line
    assert lines[0].startswith("finetune: 0.004/0.016 kimg (25%)") and "ETA " in lines[0]
    assert lines[-1].startswith("finetune: 0.016/0.016 kimg (100%)") and "done in " in lines[-1]


def test_pretrain_progress_says_pretrain(tmp_path, capsys):
    from helpers import random_images

    random_images(tmp_path / "imgs", 8)
    args = ["pretrain", "--data", tmp_path / "imgs", "--resolution", "16", "--kimg", "0.008", "--batch", "4",
            "--snap", "0.008", "--out", tmp_path / "run", "--z-dim", "8", "--mapping-layers", "1",
            "--channel-base", "256", "--channel-max", "16"]  # fmt: skip
    code, out, err = run(capsys, *args)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("pretrain: ")]
    assert lines and lines[-1].startswith("pretrain: 0.008/0.008 kimg (100%)"), out
    assert "finetune:" not in out and not any(c in out for c in BAR_CHARS)


def test_line_progress_ticks_by_fraction_and_time():
    from rich.console import Console

    from ganzoo._progress import LineProgress, progress

    import io

    buffer = io.StringIO()
    console = Console(file=buffer, width=40)
    assert isinstance(progress(console=console), LineProgress)  # a StringIO is not a terminal
    with LineProgress(console, unit="images", rate_unit="img/s", every=0.25, seconds=None) as bar:
        task = bar.add_task("features of a-very-long-folder-name-that-is-wider-than-forty-columns", total=100)
        for _ in range(100):
            bar.advance(task, 1)
    lines = buffer.getvalue().splitlines()
    assert [line.split(": ")[1].split("  ")[0] for line in lines] == [
        "25/100 images (25%)", "50/100 images (50%)", "75/100 images (75%)", "100/100 images (100%)"]
    assert all(line.startswith("features of a-very-long-folder-name-that-is-wider-than-forty-columns: ") for line in lines)
    assert "img/s" in lines[0] and "ETA" in lines[0] and "done in" in lines[-1]


def test_synth_prints_plain_lines(tmp_path, capsys):
    code, out, err = run(capsys, "synth", "primitives", "--n", "40", "--resolution", "16", "--out", tmp_path / "s")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("primitives 16px: ")]
    assert lines and lines[-1].startswith("primitives 16px: 40/40 images (100%)") and "done in" in lines[-1], out
    assert not any(c in out + err for c in BAR_CHARS)


def test_metrics_feature_progress_is_plain_lines_on_stderr(tmp_path, capsys):
    from helpers import random_images

    tiny_gan().save(tmp_path / "ckpt")
    random_images(tmp_path / "imgs", 12)
    code, out, err = run(capsys, "metrics", tmp_path / "ckpt", "--data", tmp_path / "imgs", "--metrics", "kid",
                         "--num-gen", "12", "--feature-extractor", "pixels@8")  # fmt: skip
    assert code == 0, err
    assert not any(c in err for c in BAR_CHARS), err  # (stdout has the results table)
    done = [line for line in err.splitlines() if "12/12 images (100%)" in line]
    assert len(done) == 2 and all("done in" in line for line in done), err  # the data, then the samples
    assert any(line.startswith("features of imgs: ") for line in done)


def test_merge_stages_say_merge(tmp_path, capsys):
    from ganzoo.cocktail import merge

    merge([tiny_gan(seed=1), tiny_gan(seed=2)], tmp_path / "m", root_kimg=0.008, merge_kimg=0.008, batch=4,
          aug="none", snap=0.008, class_names=["a", "b"])  # fmt: skip
    out = capsys.readouterr().out
    assert [line.split(": ")[0] for line in out.splitlines() if "kimg (100%)" in line] == [
        "merge stage 1/2", "merge stage 2/2"], out
    assert not any(c in out for c in BAR_CHARS)


# ------------------------------------------------------------------------------------------------
# generate: progress for many seeds, and a grid limit


def test_generate_shows_progress_for_many_seeds_and_same_images(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    gan = tiny_gan()
    gan.save(tmp_path / "ckpt")
    code, out, err = run(capsys, "generate", tmp_path / "ckpt", "--seeds", "0-99", "--outdir", tmp_path / "d")
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("generate: ")]
    assert lines and lines[-1].startswith("generate: 100/100 images (100%)"), err
    assert not any(c in err for c in BAR_CHARS)
    expected = gan.sample(seeds=range(100), batch_size=8)
    for seed in (0, 7, 8, 63, 99):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "d" / f"seed{seed:04d}.png")), expected[seed])
    # A few seeds: no progress lines.
    code, out, err = run(capsys, "generate", tmp_path / "ckpt", "--seeds", "0-3", "--out", tmp_path / "g.png")
    assert code == 0 and "generate: " not in err, err


def test_generate_refuses_a_grid_over_the_limit_before_loading(tmp_path, capsys):
    from ganzoo.cli.models import GRID_LIMIT

    code, out, err = run(capsys, "generate", tmp_path / "missing-ckpt", "--seeds", f"0-{GRID_LIMIT}",
                         "--out", tmp_path / "g.png")  # fmt: skip
    one_line_error(code, err, f"at most {GRID_LIMIT} images")
    assert "--outdir" in err and not (tmp_path / "g.png").exists()


# ------------------------------------------------------------------------------------------------
# The rank table at 80 columns


def _rank_result(names):
    from ganzoo.ranking import RankedCandidate, RankResult

    origins = ["published-real", "generated", "cache", "published"]
    rows = [RankedCandidate(name, fid=123.456 + i, kid=0.12345, precision=0.5, recall=0.25, density=1.234,
                            coverage=0.625, features_from=origins[i % 4]) for i, name in enumerate(names)]  # fmt: skip
    return RankResult("/home/user/data/my-target-dataset", 1234, 256, "fid", "generated", "inception-fid", 1000, 0,
                      rows, names[0], "hint")  # fmt: skip


@pytest.mark.parametrize("width", [80, 100, 140])
def test_rank_table_is_readable_at_80_columns(width):
    import io

    from rich.console import Console

    from ganzoo.ranking import render_table

    names = ["primitives-ps-stylegan2-256", "ffhq-stylegan2-config-f-1024", "lsunchurch-stylegan2-256", "discs-stylegan2-32"]
    buffer = io.StringIO()
    console = Console(file=buffer, width=width)
    console.print(render_table(_rank_result(names), width=console.width))
    text = buffer.getvalue()
    assert "…" not in text, text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    rows = [line for line in text.splitlines() if any(name in line for name in names)]
    assert len(rows) == 4, text  # one line per candidate, its name whole
    for value in ("124.46", "0.12345", "0.500", "0.250"):
        assert value in rows[1], text
    if width >= 100:  # everything fits
        assert "published-real" in text and "0.625" in text and "1.234" in text
    else:  # what does not fit is named, not cut
        assert "--json" in text


def test_rank_table_folds_a_long_path_instead_of_cutting_it():
    import io

    from rich.console import Console

    from ganzoo.ranking import render_table

    long = "/scratch/someone/experiments/2024/checkpoints/a-very-long-checkpoint-directory-name"
    buffer = io.StringIO()
    console = Console(file=buffer, width=80)
    console.print(render_table(_rank_result([long, "discs-stylegan2-32"]), width=80))
    text = buffer.getvalue()
    assert "…" not in text and max(len(line.rstrip()) for line in text.splitlines()) <= 80
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if "/scratch" in line)
    column = lines[first].index("/scratch")
    width = len(lines[first][column:].split(" ")[0])
    folded = "".join(line[column : column + width].strip() for line in lines[first : first + 6])
    assert folded.startswith(long), text  # the whole name, folded over lines in its column


# ------------------------------------------------------------------------------------------------
# convert FILE --as NAME checks classes and channels, not only the resolution

ENTRIES = """
[family]
architecture = "stylegan2"
license = "mit"
paper = {{ title = "T", authors = "A", year = 2024, url = "https://example.org" }}
dataset = {{ name = "D" }}
hub = {{ repo = "me/x", revision = "main" }}
[[models]]
name = "ten-classes-32"
title = "conditional"
resolution = 32
c_dim = 10
[[models]]
name = "gray-32"
title = "grayscale"
resolution = 32
c_dim = 0
generator = {{ img_resolution = 32, img_channels = 1 }}
[[models]]
name = "rgb-32"
title = "unconditional RGB"
resolution = 32
c_dim = 0
"""


@pytest.mark.parametrize("name, message", [
    ("ten-classes-32", "an unconditional network, but ten-classes-32 has 10 classes"),
    ("gray-32", "a 3-channel network, but gray-32 has 1-channel images"),
])  # fmt: skip
def test_convert_as_checks_classes_and_channels(tmp_path, capsys, monkeypatch, shared_fixtures, name, message):
    from ganzoo.hub import converted_dir

    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "mine.toml").write_text(ENTRIES.format())
    monkeypatch.setenv("GANZOO_REGISTRY_PATH", str(tmp_path / "registry"))
    tiny32 = shared_fixtures / "stylegan2-ada" / "tiny32" / "tiny32-snapshot.pkl"  # unconditional, RGB, 32x32
    code, _, err = run(capsys, "convert", tiny32, "--as", name)
    one_line_error(code, err, message)
    assert not converted_dir(name).exists()
    code, _, err = run(capsys, "convert", tiny32, "--as", "rgb-32")
    assert code == 0, err


# ------------------------------------------------------------------------------------------------
# "did you mean" names each model once


@pytest.mark.parametrize("typed", ["ffhq-256", "ffhq", "imagenet", "cifar", "afhq-cat", "stylegan2-ffhq", "lsun"])
def test_did_you_mean_names_each_model_once(typed):
    from ganzoo.registry import load_registry

    registry = load_registry()
    hint = registry.suggest(typed)
    assert "did you mean" in hint, hint
    shown = hint.split("did you mean ", 1)[1].split("?", 1)[0].split(", ")
    models = [registry.resolve(item.split(" (")[0]) for item in shown]
    assert None not in models and len(models) == len(set(models)), hint
    for item in shown:  # an alias is shown with the model it names
        name = item.split(" (")[0]
        assert name in registry.entries or item == f"{name} ({registry.resolve(name)})", hint


def test_cli_unknown_model_suggestion_is_one_line(capsys):
    code, _, err = run(capsys, "info", "ffhq-256")
    one_line_error(code, err, "did you mean")
    assert err.count("ffhq-stylegan2-256") == 1, err


# ------------------------------------------------------------------------------------------------
# ganzoo cache list / clear


def _fill_cache(root):
    files = {
        "features/dataset-abc.safetensors": 1000,
        "features/sample-def.safetensors": 2000,
        "checkpoints/discs-stylegan2-32/generator.safetensors": 30_000,
        "checkpoints/discs-stylegan2-32/config.json": 500,
        "extractors/pt_inception-2015-12-05-6726825d.pth": 40_000,
        "downloads/tiny32.pkl": 5000,
        "verified.json": 100,
        "notes-of-my-own.txt": 7,  # not ganzoo's: never listed as a section, never deleted
    }
    for name, size in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x" * size)
    return files


def test_cache_list_shows_each_cache_with_its_size(tmp_path, capsys, monkeypatch):
    import json

    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    _fill_cache(tmp_path / "cache")
    code, out, err = run(capsys, "cache", "list")
    assert code == 0, err
    for words in (("features", "2", "3.0 kB"), ("converted", "1", "30.5 kB"), ("extractors", "1", "40.0 kB"),
                  ("downloads", "1", "5.0 kB"), ("total", "78.6 kB")):  # fmt: skip
        assert any(all(w in line for w in words) for line in out.splitlines()), (words, out)
    assert "discs-stylegan2-32" in out  # converted checkpoints are named
    assert "hf cache ls" in out  # where the Hub's own downloads are, and how to clear them
    code, out, err = run(capsys, "cache", "list", "--json", "-")
    data = json.loads(out)
    assert data["path"] == str(tmp_path / "cache")
    assert {s["name"]: (s["items"], s["bytes"]) for s in data["sections"]} == {
        "features": (2, 3000), "converted": (1, 30_500), "extractors": (1, 40_000), "downloads": (1, 5000),
        "records": (1, 100)}  # fmt: skip
    assert data["total_bytes"] == 78_600


def test_cache_clear_deletes_what_is_asked_and_asks_first(tmp_path, capsys, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("GANZOO_CACHE", str(root))
    _fill_cache(root)
    code, _, err = run(capsys, "cache", "clear")
    one_line_error(code, err, "--features")
    code, _, err = run(capsys, "cache", "clear", "--features")  # not a terminal: no question, no deletion
    one_line_error(code, err, "--yes")
    assert (root / "features" / "dataset-abc.safetensors").is_file()
    code, out, err = run(capsys, "cache", "clear", "--features", "--extractors", "--yes")
    assert code == 0, err
    assert "features" in out and "3.0 kB" in out and "40.0 kB" in out
    assert not (root / "features").exists() and not (root / "extractors").exists()
    assert (root / "checkpoints" / "discs-stylegan2-32" / "config.json").is_file()
    code, out, err = run(capsys, "cache", "clear", "--all", "--yes")
    assert code == 0, err
    assert sorted(p.name for p in root.iterdir()) == ["notes-of-my-own.txt"]
    code, out, err = run(capsys, "cache", "clear", "--all", "--yes")
    assert code == 0 and "nothing to delete" in out, out


def test_cache_clear_asks_on_a_terminal(tmp_path, capsys, monkeypatch):
    import io

    root = tmp_path / "cache"
    monkeypatch.setenv("GANZOO_CACHE", str(root))
    _fill_cache(root)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    code, out, err = run(capsys, "cache", "clear", "--converted")
    assert code == 1 and (root / "checkpoints").is_dir(), out + err
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    code, out, err = run(capsys, "cache", "clear", "--converted")
    assert code == 0 and not (root / "checkpoints").exists(), out + err


def test_playground_prints_plain_lines(tmp_path, capsys, monkeypatch):
    from ganzoo.playground import StudyConfig
    from ganzoo.playground import study as study_module

    tiny = StudyConfig(pretrain_steps=150, finetune_steps=20, checkpoint_every=50, eval_every=10, w1_samples=64,
                       metric_samples=64)  # fmt: skip
    monkeypatch.setattr(study_module, "QUICK", tiny)
    code, out, err = run(capsys, "playground", "reproduce", "--quick", "--out", tmp_path / "p")
    assert code == 0, err
    done = [line for line in out.splitlines() if "G steps (100%)" in line and "done in" in line]
    assert done, out
    assert not any(c in line for line in out.splitlines() if "G steps" in line for c in BAR_CHARS)
