"""Check before the work, never lose the work (training): finetune, pretrain and merge refuse
what can be refused before they load, build or train anything; a run interrupted before its
first snapshot resumes from its start; a resumed run keeps its settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ganzoo
from ganzoo.cli import main
from ganzoo.errors import GanzooError
from ganzoo.train import checks, rundir, runner
from ganzoo.train.loop import Trainer
from ganzoo.train.runner import finetune, latest_snapshot
from helpers import random_images, tiny_gan

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models, shared cores

WEIGHTS = ("generator.safetensors", "generator_raw.safetensors", "discriminator.safetensors", "training_state.safetensors")
TINY = ["--z-dim", "8", "--mapping-layers", "1", "--channel-base", "256", "--channel-max", "16"]


@pytest.fixture(scope="module")
def source() -> ganzoo.GAN:
    return tiny_gan(seed=1)


@pytest.fixture()
def setup(tmp_path, source):
    """A source checkpoint directory and a folder of 8 images for it."""
    src = source.save(tmp_path / "src")
    random_images(tmp_path / "imgs", 8, seed=2)
    return src, tmp_path / "imgs"


@pytest.fixture()
def no_training(monkeypatch):
    """Fails the test if a Trainer is built: the refusal must come before any training."""

    def refuse(*args, **kwargs):
        raise AssertionError("a Trainer was built: the check came after the work started")

    monkeypatch.setattr(Trainer, "__init__", refuse)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def _same_weights(a: Path, b: Path) -> bool:
    for name in WEIGHTS:
        ta, tb = load_file(str(a / name)), load_file(str(b / name))
        if ta.keys() != tb.keys() or not all(torch.equal(ta[k], tb[k]) for k in ta):
            return False
    return True


# ----------------------------------------------------------------------------------------------
# (a) validated before the work


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "-1"], "--lr -1: must be a positive number"),
        (["--lr", "nan"], "--lr nan: must be a finite number"),
        (["--kimg", "0"], "--kimg 0: must be a positive number"),
        (["--snap", "-5"], "--snap -5: must be a positive number"),
        (["--batch", "0"], "--batch 0: must be at least 1"),
        (["--batch", "4", "--batch-gpu", "3"], "--batch-gpu 3: must divide --batch 4"),
        (["--gamma", "-1"], "--gamma -1: must be at least 0"),
        (["--aug", "fixed", "--p", "2"], "--p 2: must be from 0 to 1"),
        (["--ada-target", "1.5"], "--ada-target 1.5: must be from 0 to 1"),
        (["--seed", "-1"], "--seed -1: must be from 0 to"),
        (["--augpipe", "bgx"], "--augpipe bgx: unknown augmentation preset"),
        (["--aug", "lots"], "--aug must be ada, fixed or none, not 'lots'"),
        (["--recipe", "fast"], "unknown recipe 'fast'"),
        (["--freeze-d", "-2"], "--freeze-d -2: must be at least 0"),
        (["--resolution", "24"], "--resolution 24: must be a power of two"),
        (["--metrics", "foo"], "unknown metric(s) foo"),
        (["--device", "gpu0"], "--device gpu0: not a device"),
    ],
)
def test_finetune_refuses_bad_settings_before_anything_is_loaded(setup, tmp_path, capsys, no_training, args, message):
    src, imgs = setup
    out = tmp_path / "run"
    assert main(["finetune", str(src), "--data", str(imgs), "--out", str(out), "--kimg", "0.004", *args]) == 1
    err = _one_line(capsys)
    assert message in err, err
    assert "-0.8" not in err  # never the learning rate after the lazy-regularization correction
    assert not out.exists()


def test_the_python_api_goes_through_the_same_checks(source, tmp_path, no_training):
    data = torch.zeros([4, 3, 16, 16], dtype=torch.uint8)
    with pytest.raises(GanzooError, match=r"^--lr -1: must be a positive number$"):
        ganzoo.finetune(source, data, tmp_path / "run", lr=-1)
    with pytest.raises(GanzooError, match="pl_weight -1: must be at least 0"):
        finetune(source, data, tmp_path / "run", pl_weight=-1.0)
    with pytest.raises(TypeError, match="unexpected keyword argument.* pl_wieght"):
        finetune(source, data, tmp_path / "run", pl_wieght=1.0)
    with pytest.raises(GanzooError, match="keep_snapshots 0"):
        finetune(source, data, tmp_path / "run", keep_snapshots=0)
    # The metrics re-read the data from disk: images in memory are refused now, not at a snapshot.
    with pytest.raises(GanzooError, match="--metrics needs the data as a folder"):
        finetune(source, data, tmp_path / "run", metrics=["kid"])
    with pytest.raises(GanzooError, match="metric options bogus: not options of the metrics"):
        finetune(source, tmp_path, tmp_path / "run", metrics=["kid"], metrics_options={"bogus": 1})
    assert not (tmp_path / "run").exists()


def test_a_missing_cuda_is_one_line(setup, tmp_path, capsys, monkeypatch, no_training):
    src, imgs = setup
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "run"
    assert main(["finetune", str(src), "--data", str(imgs), "--out", str(out), "--device", "cuda"]) == 1
    assert "--device cuda: CUDA is not available" in _one_line(capsys) and not out.exists()
    assert main(["pretrain", "--data", str(imgs), "--resolution", "16", "--out", str(out), "--device", "cuda"]) == 1
    assert "--device cuda: CUDA is not available" in _one_line(capsys) and not out.exists()


def test_metrics_whose_extractor_weights_cannot_be_had_stop_before_training(setup, tmp_path, capsys, monkeypatch,
                                                                            no_training):  # fmt: skip
    """Offline without the Inception weights: refused at once, not after training to --snap."""
    src, imgs = setup
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    out = tmp_path / "run"
    assert main(["finetune", str(src), "--data", str(imgs), "--out", str(out), "--metrics", "fid"]) == 1
    err = _one_line(capsys)
    assert "--metrics needs the inception-fid feature extractor" in err and "HF_HUB_OFFLINE" in err
    assert not out.exists()


def test_too_few_images_for_a_metric_is_refused_before_training(setup, tmp_path, monkeypatch):
    src, _ = setup
    random_images(tmp_path / "three", 3, seed=5)
    monkeypatch.setattr(runner, "run_loop", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(GanzooError, match="pr needs at least 4 real images, the data has 3"):
        finetune(src, tmp_path / "three", tmp_path / "run", metrics=["pr"], batch=4, progress=False,
                 metrics_options={"feature_extractor": "pixels@4"})  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_absurd_sizes_are_refused_before_anything_is_built(setup, tmp_path, capsys, monkeypatch):
    import ganzoo.train.pretrain as pretrain_module

    monkeypatch.setattr(pretrain_module, "build_gan", lambda *a, **k: pytest.fail("built the networks"))
    out = tmp_path / "run"
    src, imgs = setup
    # 65536² with channels at the top: terabytes, refused at once.
    assert main(["pretrain", "--data", str(imgs), "--resolution", "65536", "--out", str(out), *TINY[:4],
                 "--channel-base", "1048576", "--channel-max", "16"]) == 1  # fmt: skip
    err = _one_line(capsys)
    assert "--resolution 65536: training 4 image(s) of 65536x65536 at a time needs more than" in err and "GiB" in err
    # The default channels leave a 4096² block with none.
    assert main(["pretrain", "--data", str(imgs), "--resolution", "4096", "--out", str(out)]) == 1
    assert "the 4096x4096 block has no channels; give --channel-base of at least 4096" in _one_line(capsys)
    assert main(["pretrain", "--data", str(imgs), "--resolution", "16", "--out", str(out), "--channels", "2"]) == 1
    assert "--channels 2: must be 3 (RGB), 1 (grayscale) or 4 (RGBA)" in _one_line(capsys)
    assert main(["pretrain", "--data", str(imgs), "--resolution", "16", "--out", str(out), "--z-dim", "0"]) == 1
    assert "--z-dim 0: must be at least 1" in _one_line(capsys)
    assert not out.exists()
    # finetune: a source's resolution with an absurd chunk of images.
    monkeypatch.setattr(runner, "load_training_images", lambda *a, **k: pytest.fail("read the data"))
    with pytest.raises(GanzooError, match=r"the source is 16x16: training 1099511627776 image\(s\) of 16x16"):
        finetune(src, imgs, out, batch=2**40, progress=False)
    assert not out.exists()
    assert checks.memory_floor(1024, 3, 32, 32, 4) < 8 << 30  # a real 1024² chunk is not refused by the floor


# ----------------------------------------------------------------------------------------------
# (b) interrupted before the first snapshot


def test_a_run_interrupted_before_its_first_snapshot_resumes_from_its_start(source, tmp_path, capsys):
    data = (torch.rand([12, 3, 16, 16], generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    straight = finetune(source, data, tmp_path / "straight", kimg=0.016, batch=4, progress=False)

    def ctrl_c(trainer, stats):
        if trainer.cur_nimg >= 8:  # long before the default --snap of 50 kimg
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        finetune(source, data, out, kimg=0.016, batch=4, callback=ctrl_c)
    err = capsys.readouterr().err
    assert f"interrupted at 0.008 kimg: {out} resumes from its start (kimg 0) with --resume {out}" in err
    assert latest_snapshot(out).name == "snapshot-0000000000"
    assert json.loads((out / "snapshots" / "snapshot-0000000000" / "metrics.json").read_text()) == {"kimg": 0.0}
    finetune(resume=out, data=data, progress=False)
    assert _same_weights(straight, out)  # the bytes of the uninterrupted run


def test_an_unstarted_run_directory_is_started_afresh_by_the_same_command(setup, tmp_path, capsys):
    """Killed before even its start was saved (or made by an older ganzoo): --resume says what to do,
    the same command starts it again in place, and anything not the run's own is never removed."""
    src, imgs = setup
    out = tmp_path / "run"
    args = ["finetune", str(src), "--data", str(imgs), "--out", str(out), "--kimg", "0.004", "--batch", "4"]
    assert main(args) == 0
    import shutil

    shutil.rmtree(out / "snapshots")
    for name in ("config.json", "generator.safetensors", "generator_raw.safetensors", "discriminator.safetensors",
                 "training_state.safetensors", "samples.png", "metrics.json"):  # fmt: skip
        (out / name).unlink()
    capsys.readouterr()
    assert main(["finetune", "--resume", str(out)]) == 1
    assert "interrupted before it saved its start, so there is nothing to resume; run the same command again" in _one_line(capsys)
    assert main(args) == 0
    assert "starting it afresh" in capsys.readouterr().err
    assert ganzoo.load(out).config["training"]["kimg"] == pytest.approx(0.004)
    (out / "snapshots").rename(tmp_path / "elsewhere")
    (out / "notes.txt").write_text("mine")
    for name in ("config.json", "generator.safetensors"):
        (out / name).unlink()
    assert main(args) == 1  # not only the run's own files: refused as before
    assert "already exists" in _one_line(capsys) and (out / "notes.txt").read_text() == "mine"


# ----------------------------------------------------------------------------------------------
# (c) resume keeps the run's settings


def test_resume_refuses_settings_that_differ_and_records_those_that_may_change(setup, tmp_path, capsys):
    src, imgs = setup
    out = tmp_path / "run"
    assert main(["finetune", str(src), "--data", str(imgs), "--out", str(out), "--kimg", "0.008", "--batch", "4",
                 "--snap", "0.008", "--aug", "ada", "--recipe", "freezed"]) == 0  # fmt: skip
    capsys.readouterr()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for args, names in [
        (["--lr", "0.01", "--aug", "none"], ["--lr 0.01 (the run's: 0.0025)", "--aug none (the run's: ada)"]),
        (["--batch", "8"], ["--batch 8 (the run's: 4)"]),
        (["--recipe", "full"], ["--recipe full (the run's: freezed)"]),
        (["--seed", "3", "--xflip"], ["--seed 3 (the run's: 0)", "--xflip on (the run's: off)"]),
        (["--out", str(tmp_path / "other")], [f"--out {tmp_path / 'other'} (the run is {out})"]),
    ]:
        assert main(["finetune", "--resume", str(out), "--kimg", "0.016", *args]) == 1, args
        err = _one_line(capsys)
        assert all(name in err for name in names) and "a resumed run keeps its settings" in err, err
    assert main(["finetune", "--resume", str(out), "--kimg", "0.004"]) == 1
    assert "the run is already at 0.008 kimg, past --kimg 0.004; give a --kimg above 0.008" in _one_line(capsys)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing written by a refused resume
    # The run's own values, and the source it came from, are accepted; kimg and snap apply and are recorded.
    assert main(["finetune", str(src), "--resume", str(out), "--kimg", "0.016", "--snap", "0.004", "--batch", "4",
                 "--recipe", "freezed"]) == 0  # fmt: skip
    info = json.loads((out / "run.json").read_text())
    assert info["snap_kimg"] == 0.004 and info["options"]["total_kimg"] == 0.016
    assert info["resumed"] == [{"at_kimg": 0.008, "changed": {"kimg": 0.016, "snap": 0.004},
                                "ganzoo_version": ganzoo.__version__}]  # fmt: skip
    assert (out / "snapshots" / "snapshot-0000000012").is_dir()  # the new --snap
    assert json.loads((out / "config.json").read_text())["training"]["kimg"] == pytest.approx(0.016)


def test_pretrain_resume_keeps_its_architecture_and_aug(tmp_path, capsys):
    random_images(tmp_path / "imgs", 8)
    out = tmp_path / "run"
    assert main(["pretrain", "--data", str(tmp_path / "imgs"), "--resolution", "16", "--kimg", "0.008", "--batch", "4",
                 "--out", str(out), *TINY]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["pretrain", "--resume", str(out), "--resolution", "32", "--channel-max", "32"]) == 1
    err = _one_line(capsys)
    assert "--resolution 32 (the run's: 16), --channel-max 32 (the run's: 16)" in err and "keeps its architecture" in err
    assert main(["pretrain", "--resume", str(out), "--aug", "ada"]) == 1
    assert "--aug ada (the run's: none)" in _one_line(capsys)
    assert main(["pretrain", "--resume", str(out), "--resolution", "16", "--kimg", "0.012", *TINY]) == 0


# ----------------------------------------------------------------------------------------------
# a metric that fails at a snapshot does not lose it


def test_a_metric_failing_at_a_snapshot_keeps_the_snapshot(source, setup, tmp_path, monkeypatch):
    _, imgs = setup

    def fail(*args, **kwargs):
        raise GanzooError("the metrics could not run")

    monkeypatch.setattr(rundir, "_compute_metrics", fail)
    out = tmp_path / "run"
    with pytest.raises(GanzooError, match=r"could not run \(the snapshot at 0.004 kimg was written without metrics"):
        finetune(source, imgs, out, kimg=0.008, batch=4, snap=0.004, progress=False, metrics=["kid"],
                 metrics_options={"feature_extractor": "pixels@4"})  # fmt: skip
    assert latest_snapshot(out).name == "snapshot-0000000004"


# ----------------------------------------------------------------------------------------------
# merge


def test_merge_refuses_bad_settings_and_an_unavailable_eval_extractor_before_any_stage(tmp_path, capsys, monkeypatch):
    import importlib

    merge_module = importlib.import_module("ganzoo.cocktail.stages")
    red, blue = tmp_path / "red", tmp_path / "blue"
    tiny_gan(seed=1).save(red)
    tiny_gan(seed=2).save(blue)
    monkeypatch.setattr(merge_module, "_run_stage", lambda *a, **k: pytest.fail("a stage ran"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "merged"
    base = ["merge", str(red), str(blue), "--out", str(out), "--root-kimg", "0.008", "--merge-kimg", "0.008"]
    for args, message in [
        (["--eval"], "merge --eval needs the inception-fid feature extractor"),
        (["--eval", "--feature-extractor", "vgg16pr"], "unknown feature extractor 'vgg16pr'"),
        (["--device", "cuda"], "--device cuda: CUDA is not available"),
        (["--batch", "0"], "--batch 0: must be at least 1"),
        (["--root-kimg", "nan"], "--root-kimg nan: must be a finite number"),
    ]:
        assert main([*base, *args]) == 1, args
        err = _one_line(capsys)
        assert message in err, (args, err)
    with pytest.raises(GanzooError, match="--lr -1: must be a positive number"):
        merge_module.merge([red, blue], out, lr=-1.0, progress=False)
    assert not out.exists()
