"""The training engine, the recipes, snapshots and resume, and `ganzoo finetune`, on tiny models."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import ganzoo
from ganzoo.checkpoint import GAN
from ganzoo.cli import main
from ganzoo.errors import DatasetError, GanzooError
from ganzoo.architectures import get_architecture
from ganzoo.architectures.stylegan2.adafm import AdaFMGenerator, fold_adafm
from ganzoo.train import rundir
from ganzoo.train.dataset import load_training_images
from ganzoo.train.loop import Trainer, TrainingOptions
from ganzoo.train.loss import ChunkStats
from ganzoo.train.options import FinetuneOptions
from ganzoo.train.recipes import default_freeze_d, prepare
from ganzoo.train.runner import finetune, latest_snapshot
from helpers import random_images, tiny_gan

WEIGHTS = ("generator.safetensors", "generator_raw.safetensors", "discriminator.safetensors")


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models, shared cores


@pytest.fixture(scope="module")
def source() -> GAN:
    return tiny_gan(seed=1)


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (torch.rand([12, 3, 16, 16], generator=gen) * 255).to(torch.uint8)


def _short(source, data, out, **kwargs):
    settings = dict(recipe="full", kimg=0.016, batch=4, snap=0.008, progress=False)
    settings.update(kwargs)
    return finetune(source, data, out, **settings)


def _same_files(a: Path, b: Path, names=WEIGHTS + ("training_state.safetensors",)) -> bool:
    for name in names:
        ta, tb = load_file(str(a / name)), load_file(str(b / name))
        if ta.keys() != tb.keys() or not all(torch.equal(ta[k], tb[k]) for k in ta):
            return False
    return True


def test_same_seed_same_bytes_and_exact_resume(source, data, tmp_path):
    full = _short(source, data, tmp_path / "full")
    again = _short(source, data, tmp_path / "again")
    assert _same_files(full, again)
    other_seed = _short(source, data, tmp_path / "seed1", seed=1)
    assert not _same_files(full, other_seed, names=WEIGHTS)

    # Stop half way, then resume: the bytes of the uninterrupted run, kimg and ADA p continue.
    half = _short(source, data, tmp_path / "half", kimg=0.008)
    assert json.loads((half / "config.json").read_text())["training"]["kimg"] == pytest.approx(0.008)
    finetune(resume=half, data=data, kimg=0.016, progress=False)
    assert _same_files(full, half)
    config = json.loads((half / "config.json").read_text())
    assert config["training"]["kimg"] == pytest.approx(0.016)
    # The start (kimg 0) is a snapshot too: a run stopped before its first --snap resumes from it.
    assert sorted(p.name for p in (half / "snapshots").iterdir()) == ["snapshot-0000000000", "snapshot-0000000008",
                                                                      "snapshot-0000000016"]  # fmt: skip
    # The source is not modified by training.
    assert torch.equal(source.D.b4.out.weight, tiny_gan(seed=1).D.b4.out.weight)


def test_an_options_object_trains_the_run_its_keywords_train(source, data, tmp_path):
    """finetune(options=FinetuneOptions(...)) is finetune(**keywords): the same bytes and records;
    keyword arguments fill in over the object; what is no setting is refused, naming it."""
    keywords = dict(recipe="freezed", kimg=0.008, batch=4, snap=0.004, aug="fixed", p=0.2, lr=0.003, progress=False,
                    ema_rampup=None)  # fmt: skip
    opts = FinetuneOptions(recipe="freezed", kimg=0.008, batch=4, snap=0.004, aug="fixed", p=0.2, lr=0.003,
                           progress=False, training={"ema_rampup": None})  # fmt: skip
    assert opts.keywords() == keywords and FinetuneOptions.of(None, keywords, "finetune") == opts
    by_keywords = finetune(source, data, tmp_path / "keywords", **keywords)
    by_options = finetune(source, data, tmp_path / "options", options=opts)
    mixed = finetune(source, data, tmp_path / "mixed", options=replace(opts, lr=0.5, recipe="full"), lr=0.003, recipe="freezed")
    for out in (by_options, mixed):
        assert _same_files(by_keywords, out)
        for name in ("config.json", "run.json"):
            assert (out / name).read_text() == (by_keywords / name).read_text(), (out, name)
    # A resumed run takes its settings as an object too (what may change, here kimg).
    finetune(resume=by_options, data=data, options=FinetuneOptions(kimg=0.012, progress=False))
    assert json.loads((by_options / "config.json").read_text())["training"]["kimg"] == pytest.approx(0.012)
    with pytest.raises(GanzooError, match=r"cannot resume with --lr 0.5 \(the run's: 0.003\)"):
        finetune(resume=by_options, data=data, options=replace(opts, lr=0.5))
    with pytest.raises(TypeError, match=r"^finetune\(\) got unexpected keyword argument\(s\) pl_wieght$"):
        finetune(source, data, tmp_path / "x", options=opts, pl_wieght=1.0)
    with pytest.raises(TypeError, match=r"training has unknown TrainingOptions field\(s\) pl_wieght"):
        FinetuneOptions(training={"pl_wieght": 1.0})
    with pytest.raises(TypeError, match="training aug_p, total_kimg: give p, kimg instead"):
        FinetuneOptions(training={"total_kimg": 1.0, "aug_p": 0.1})
    with pytest.raises(TypeError, match="options must be a FinetuneOptions, not dict"):
        finetune(source, data, tmp_path / "x", options={"kimg": 1})
    with pytest.raises(GanzooError, match=r"^--lr -1: must be a positive number$"):
        finetune(source, data, tmp_path / "x", options=FinetuneOptions(lr=-1))
    assert not (tmp_path / "x").exists()


def test_output_is_a_checkpoint_directory_with_lineage(source, data, tmp_path):
    out = _short(source, data, tmp_path / "run", aug="fixed", p=0.25)
    gan = ganzoo.load(out)
    assert gan.G is not None and gan.D is not None
    config = gan.config
    step = config["lineage"][-1]
    assert step["recipe"] == "full" and step["kimg"] == pytest.approx(0.016)
    assert step["data"]["sha256"] == load_training_images(data, 16, 3).sha256
    assert step["parent"] == "<in-memory GAN>"
    assert config["training"]["ada_p"] == pytest.approx(0.25)
    assert config["license"] == source.config["license"]
    assert (out / "samples.png").is_file() and (out / "log.jsonl").is_file()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["kimg"] == pytest.approx(0.016) and "loss_G" in log[-1] and "img_per_s" in log[-1]
    assert -1 <= log[-1]["rt"] <= 1 and "ada_p" in log[-1]
    # generate consumes it unchanged.
    assert main(["generate", str(out), "--seeds", "0-3", "--out", str(tmp_path / "grid.png")]) == 0
    with pytest.raises(GanzooError, match="already exists"):
        _short(source, data, out)


def test_lazy_regularization_corrections_and_phase_schedule(source, data):
    prepared = prepare(source, "full")
    images = load_training_images(data, 16, 3)
    trainer = Trainer(prepared.G, prepared.G_ema, prepared.D, images, TrainingOptions.for_architecture(source.architecture, source.G_ema.init_kwargs, 4, lr_G=0.002, lr_D=0.003))
    g_group, d_group = trainer.optimizers["G"].param_groups[0], trainer.optimizers["D"].param_groups[0]
    assert g_group["lr"] == pytest.approx(0.002 * 4 / 5) and g_group["betas"] == pytest.approx((0.0, 0.99 ** (4 / 5)))
    assert d_group["lr"] == pytest.approx(0.003 * 16 / 17) and d_group["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert trainer.r1_gamma == pytest.approx(0.0002 * 16**2 / 4)
    trainer.step()  # the real thing once: every phase runs at minibatch 0
    assert float(trainer.loss.pl_mean) > 0
    phases = []

    def record(phase, *args, **kwargs):  # the schedule only: no compute, no gradients
        phases.append((trainer.batch_idx, phase))
        return ChunkStats()

    trainer.loss.accumulate = record
    for _ in range(16):
        trainer.step()
    assert [b for b, p in phases if p == "Greg"] == [4, 8, 12, 16]
    assert [b for b, p in phases if p == "Dreg"] == [16]
    assert sum(p == "Gmain" for _, p in phases) == sum(p == "Dmain" for _, p in phases) == 16
    assert trainer.cur_nimg == 17 * 4


def test_ema_half_life_and_rampup(source, data):
    prepared = prepare(source, "full")
    images = load_training_images(data, 16, 3)
    trainer = Trainer(prepared.G, prepared.G_ema, prepared.D, images, TrainingOptions.for_architecture(source.architecture, source.G_ema.init_kwargs, 4, ema_kimg=0.1, ema_rampup=None))
    before = trainer.G_ema.mapping.fc0.weight.clone()
    with torch.no_grad():
        trainer.G.mapping.fc0.weight.copy_(before + 1)
    trainer.cur_nimg = 10_000
    trainer._update_ema()
    beta = 0.5 ** (4 / 100)  # half-life 100 images, 4 images per step
    assert torch.allclose(trainer.G_ema.mapping.fc0.weight, before + (1 - beta), atol=1e-6)
    trainer.options.ema_rampup = 0.05  # the half-life is at most 5% of the images seen so far
    trainer.cur_nimg = 400  # -> 20 images
    before = trainer.G_ema.mapping.fc0.weight.clone()
    trainer._update_ema()
    beta = 0.5 ** (4 / 20)
    g_weight = trainer.G.mapping.fc0.weight
    assert torch.allclose(trainer.G_ema.mapping.fc0.weight, g_weight.lerp(before, beta), atol=1e-6)


def test_freezed_keeps_the_first_d_layers(source, data, tmp_path):
    assert default_freeze_d(get_architecture("stylegan2"), tiny_gan().D) == 4  # 16px resnet D: b16 (fromrgb, conv0, conv1, skip); b8 trains
    out = _short(source, data, tmp_path / "freezed", recipe="freezed", freeze_d=4)
    gan = ganzoo.load(out)
    assert gan.config["discriminator"]["block_kwargs"]["freeze_layers"] == 4
    for name in ("b16.fromrgb.weight", "b16.conv0.weight", "b16.conv1.weight", "b16.skip.weight"):
        assert torch.equal(gan.D.state_dict()[name], source.D.state_dict()[name]), name
    assert not torch.equal(gan.D.b8.conv0.weight, source.D.b8.conv0.weight)
    assert gan.config["lineage"][-1]["settings"]["freeze_d"] == 4


def test_adafm_trains_gamma_beta_only_in_the_general_part_and_folds(source, data, tmp_path):
    out = _short(source, data, tmp_path / "adafm", recipe="adafm", general_g=1, general_d=1)
    gan = ganzoo.load(out)
    assert gan.config["architecture"] == "stylegan2-adafm"
    assert isinstance(gan.G_ema, AdaFMGenerator) and gan.G_ema.adafm_resolutions == [16]
    src = source.G_ema.state_dict()
    state = gan.G.state_dict()
    for conv in ("conv0", "conv1"):
        name = f"synthesis.b16.{conv}"
        assert torch.equal(state[f"{name}.weight"], source.G_ema.state_dict()[f"{name}.weight"])  # W frozen
        assert not torch.equal(state[f"{name}.adafm_gamma"], torch.ones_like(state[f"{name}.adafm_gamma"]))
        assert not torch.equal(state[f"{name}.adafm_beta"], torch.zeros_like(state[f"{name}.adafm_beta"]))
    assert not torch.equal(state["synthesis.b8.conv0.weight"], src["synthesis.b8.conv0.weight"])  # specific part trains
    assert "synthesis.b8.conv0.adafm_gamma" not in state
    assert torch.equal(gan.D.b16.conv0.weight, source.D.b16.conv0.weight)
    # Folding gives a plain StyleGAN2 with the same images, loadable as such.
    plain = fold_adafm(gan)
    assert plain.config["architecture"] == "stylegan2" and type(plain.G_ema).__name__ == "Generator"
    assert np.array_equal(plain.sample(seeds=[0, 1]), gan.sample(seeds=[0, 1]))
    plain.save(tmp_path / "plain")
    assert "adafm_gamma" not in " ".join(load_file(str(tmp_path / "plain" / "generator.safetensors")))
    # export folds too: the file holds plain StyleGAN2 state dicts and kwargs.
    exported = torch.load(ganzoo.export(out, tmp_path / "adafm.pt"), weights_only=True)
    assert not any("adafm" in k for k in exported["G_ema"]) and "adafm_resolutions" not in exported["init_kwargs"]["G_ema"]
    assert torch.equal(exported["G_ema"]["synthesis.b16.conv0.weight"], plain.G_ema.synthesis.b16.conv0.weight)


def test_scratch_and_a_source_without_d(source, data, tmp_path):
    prepared = prepare(source, "scratch", seed=3)
    assert not torch.equal(prepared.G.mapping.fc0.weight, source.G_ema.mapping.fc0.weight)
    assert prepared.G.init_kwargs == source.G_ema.init_kwargs
    no_d = tiny_gan(seed=1, with_d=False)
    with pytest.raises(GanzooError, match="--allow-random-d"):
        prepare(no_d, "full")
    out = _short(no_d, data, tmp_path / "random_d", kimg=0.016, allow_random_d=True)
    step = json.loads((out / "config.json").read_text())["lineage"][-1]
    assert step["settings"]["random_d"] is True and any("random init" in n for n in step["notes"])


def test_data_folder_resolution_and_mirror(source, tmp_path):
    folder = tmp_path / "imgs"
    random_images(folder, 5, size=24, seed=0)
    with pytest.raises(DatasetError, match="--resolution 16"):
        load_training_images(folder, 16, 3)
    images = load_training_images(folder, 16, 3, resample=True, mirror=True)
    assert images.images.shape == (5, 3, 16, 16) and len(images) == 10 and images.resampled
    got, _ = images.get(torch.tensor([0, 5]))
    assert torch.equal(got[1], got[0].flip(2))
    with pytest.raises(GanzooError, match="must match the source"):
        finetune(source, folder, tmp_path / "x", resolution=32, kimg=0.004, batch=4, progress=False)
    with pytest.raises(DatasetError, match="0 images"):
        load_training_images(tmp_path / "x", 16, 3) if (tmp_path / "x").mkdir() is None else None


def test_cli_finetune_and_resume(source, tmp_path, capsys):
    src_dir = source.save(tmp_path / "src")
    folder = tmp_path / "imgs"
    random_images(folder, 6, seed=1)
    out = tmp_path / "run"
    args = ["finetune", str(src_dir), "--data", str(folder), "--recipe", "freezed", "--kimg", "0.008",
            "--batch", "4", "--snap", "0.004", "--out", str(out), "--aug", "ada", "--xflip"]  # fmt: skip
    assert main(args) == 0
    assert ganzoo.load(out).config["lineage"][-1]["data"]["mirror"] is True
    assert main(["finetune", "--resume", str(out), "--kimg", "0.016"]) == 0
    assert json.loads((out / "config.json").read_text())["training"]["kimg"] == pytest.approx(0.016)
    capsys.readouterr()
    assert main(["finetune", str(src_dir), "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_crash_while_writing_a_snapshot_leaves_no_partial_snapshot(source, data, tmp_path, monkeypatch):
    out = _short(source, data, tmp_path / "run", kimg=0.008)
    real_save = rundir.save_file

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process is killed half way through writing

    monkeypatch.setattr(rundir, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        finetune(resume=out, data=data, kimg=0.016, progress=False)
    monkeypatch.setattr(rundir, "save_file", real_save)
    snaps = sorted(p.name for p in (out / "snapshots").iterdir())
    assert snaps == ["snapshot-0000000000", "snapshot-0000000008"]  # no partial or temporary folder left
    assert latest_snapshot(out).name == "snapshot-0000000008"
    finetune(resume=out, data=data, kimg=0.016, progress=False)
    assert _same_files(out, _short(source, data, tmp_path / "straight"))


def test_metrics_at_snapshots_are_logged_and_recorded(source, tmp_path, monkeypatch):
    folder = tmp_path / "imgs"
    random_images(folder, 8, seed=2)
    with pytest.warns(UserWarning):  # random-weight feature extractor (nothing can be downloaded here)
        out = finetune(source, folder, tmp_path / "run", kimg=0.004, batch=4, snap=0.004, progress=False, metrics=["kid"],
                       metrics_options={"num_gen": 8, "allow_random_weights": True, "kid_subset_size": 4})  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert "kid" in config["metrics"] and config["lineage"][-1]["metrics"]["kid"] == config["metrics"]["kid"]
    assert any("kid" in json.loads(line) for line in (out / "log.jsonl").read_text().splitlines())
    assert json.loads((out / "metrics.json").read_text())["kid"] == config["metrics"]["kid"]
    # The recorded value is the KID of the written G_ema against the data, measured here afresh.
    from ganzoo.metrics.evaluate import evaluate

    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "fresh-cache"))  # no features reused from training
    with pytest.warns(UserWarning):
        expected = evaluate(ganzoo.load(out), folder, metrics=["kid"], progress=False, num_gen=8,
                            allow_random_weights=True, kid_subset_size=4)["kid"]  # fmt: skip
    assert np.isfinite(expected) and config["metrics"]["kid"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def _stream(seed: int = 0):
    """A procedural stream of 16x16 images: image i is seeded by (seed, i) and labeled i % 2."""
    from ganzoo.streams import ProceduralImages

    calls = []

    def render(indices):
        calls.append(indices.copy())
        imgs = [np.random.RandomState([seed, int(i)]).randint(0, 256, [3, 16, 16]).astype(np.uint8) for i in indices]
        return torch.from_numpy(np.stack(imgs)), None

    return ProceduralImages(render, 16, 3, "procedural:test", {"seed": seed}), calls


def test_procedural_stream_draws_new_images_and_resumes_exactly(source, tmp_path):
    stream, calls = _stream()
    full = _short(source, stream, tmp_path / "full")
    drawn = np.concatenate(calls)
    # Draw n is image n: 16 images seen, none repeated, in order (the stream is the shuffle).
    assert drawn.tolist() == list(range(16))
    config = json.loads((full / "config.json").read_text())
    assert config["lineage"][-1]["data"]["procedural"] is True
    assert config["lineage"][-1]["data"]["sha256"] == stream.sha256

    half_stream, _ = _stream()
    half = _short(source, half_stream, tmp_path / "half", kimg=0.008)
    with pytest.raises(GanzooError, match="pass the same data"):
        finetune(resume=half, kimg=0.016, progress=False)
    other, _ = _stream(seed=1)
    with pytest.raises(GanzooError, match="data changed"):
        finetune(resume=half, data=other, kimg=0.016, progress=False)
    finetune(resume=half, data=_stream()[0], kimg=0.016, progress=False)
    assert _same_files(full, half)


def test_resume_after_a_crash_logs_each_tick_once(source, data, tmp_path):
    def crash(trainer, stats):
        if trainer.cur_nimg >= 16:  # before the 0.016 tick and snapshot
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _short(source, data, out, tick_kimg=0.004, callback=crash)
    logged = [json.loads(line)["kimg"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert logged == pytest.approx([0.004, 0.008, 0.012])  # 0.012 was logged after the last snapshot
    finetune(resume=out, data=data, progress=False, tick_kimg=0.004)
    logged = [json.loads(line)["kimg"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert logged == pytest.approx([0.004, 0.008, 0.012, 0.016])


def test_mixed_sizes_are_refused_or_resampled_and_recorded(source, tmp_path):
    """Every image decides, not the first: a 16x16 first image does not let 24x24 ones through
    silently; with --resolution they are resampled and run.json says so, with what."""
    from PIL import Image

    from ganzoo.data import MixedImagesWarning

    folder = tmp_path / "mydata"
    random_images(folder, 3, size=16, seed=0, name="a{i}.png")
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(folder / "b-gray.png")
    for i in range(2):
        Image.fromarray(np.full((24, 24, 3), 60 * i, np.uint8)).save(folder / f"c{i}.png")
    with pytest.raises(DatasetError) as refused:
        load_training_images(folder, 16, 3)
    message = str(refused.value)
    assert message.startswith(f"{folder}: mixed image sizes: 4 of 16x16, 2 of 24x24; the model is 16x16")
    assert "--resolution 16" in message and "\n" not in message

    with pytest.warns(MixedImagesWarning) as caught:
        images = load_training_images(folder, 16, 3, resample=True)
    assert sorted(str(w.message) for w in caught) == [
        f"{folder}: mixed channels: 1 grayscale and 5 colour images; the grayscale one is repeated to RGB",
        f"{folder}: mixed image sizes: 4 of 16x16, 2 of 24x24; 2 resized to 16x16 (lanczos)",
    ]
    assert images.images.shape == (6, 3, 16, 16) and images.resampled
    record = images.describe()
    assert record["resampled"] is True and record["resampled_from"] == {"24x24": 2}
    assert record["resize_filter"] == "lanczos" and record["converted"] == {"grayscale": 1}

    with pytest.warns(MixedImagesWarning):
        out = finetune(source, folder, tmp_path / "run", resolution=16, kimg=0.004, batch=4, snap=0.004, progress=False)
    data = json.loads((out / "run.json").read_text())["data"]
    assert data["resampled"] is True and data["resampled_from"] == {"24x24": 2}
    step = json.loads((out / "config.json").read_text())["lineage"][-1]
    assert any("mixed image sizes" in note for note in step["notes"])

    # A uniform set at the model's size is not resampled, whatever was asked: nothing was done.
    uniform = tmp_path / "uniform"
    random_images(uniform, 3, size=16, seed=1)
    assert load_training_images(uniform, 16, 3, resample=True).describe()["resampled"] is False
