"""`ganzoo finetune` through the CLI: metric settings (--num-gen, --feature-extractor,
--random-weights) and conditional sources trained on StyleGAN2-ADA ``dataset.json`` labels."""

from __future__ import annotations

import json

import pytest
import torch

from ganzoo.cli import main
from ganzoo.architectures.stylegan2.objective import StyleGAN2Loss
from helpers import random_images, tiny_gan

SHORT = ["--kimg", "0.008", "--batch", "4", "--snap", "0.008"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models, shared cores


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_metrics_sample_count_and_extractor_are_passed_through(tmp_path, capsys):
    src = tiny_gan(seed=1).save(tmp_path / "src")
    random_images(tmp_path / "imgs", 8, seed=2)
    out = tmp_path / "run"
    code = main(["finetune", str(src), "--data", str(tmp_path / "imgs"), "--out", str(out), *SHORT, "--aug", "none",
                 "--metrics", "fid,kid", "--num-gen", "12", "--feature-extractor", "timm:resnet18@32",
                 "--random-weights"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning: timm:resnet18@32: random weights" in err  # one warning line, never silent
    metrics = json.loads((out / "config.json").read_text())["metrics"]
    assert metrics["num_gen"] == 12 and metrics["num_real"] == 8
    assert {"fid", "kid"} <= set(metrics)
    assert json.loads((out / "run.json").read_text())["metrics_options"] == {
        "num_gen": 12, "feature_extractor": "timm:resnet18@32", "allow_random_weights": True}  # fmt: skip

    assert main(["finetune", str(src), "--data", str(tmp_path / "imgs"), "--out", str(tmp_path / "o2"),
                 "--num-gen", "12"]) == 1  # fmt: skip
    assert "apply to --metrics" in _one_line_error(capsys)


def test_conditional_source_trains_on_dataset_json_labels_and_they_reach_d(tmp_path, monkeypatch, capsys):
    src = tiny_gan(c_dim=2, seed=1).save(tmp_path / "src")
    folder = tmp_path / "imgs"
    images = random_images(folder / "sub", 6, seed=3)
    classes = [1, 0, 1, 1, 0, 1]
    (folder / "dataset.json").write_text(json.dumps({"labels": [[f"sub/{i}.png", c] for i, c in enumerate(classes)]}))
    # Reals reach D unaugmented with --aug none, as u8 / 127.5 - 1: recognise them by their pixels.
    by_pixels = {(torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1).numpy().tobytes(): c
                 for image, c in zip(images, classes)}  # fmt: skip
    seen: list[tuple[bytes, list[float]]] = []
    run_D = StyleGAN2Loss.run_D

    def spy(self, img, c, gen):
        seen.extend((row.detach().numpy().tobytes(), label.tolist()) for row, label in zip(img, c))
        return run_D(self, img, c, gen)

    monkeypatch.setattr(StyleGAN2Loss, "run_D", spy)
    out = tmp_path / "run"
    assert main(["finetune", str(src), "--data", str(folder), "--out", str(out), *SHORT, "--aug", "none"]) == 0, capsys.readouterr().err
    reals = [(by_pixels[pixels], label) for pixels, label in seen if pixels in by_pixels]
    assert len(reals) >= 8  # every D step shows a minibatch of reals
    assert all(label == [0.0, 1.0] if cls == 1 else label == [1.0, 0.0] for cls, label in reals)
    assert {tuple(label) for _, label in seen} == {(1.0, 0.0), (0.0, 1.0)}  # fakes too: classes drawn from the data
    config = json.loads((out / "config.json").read_text())
    assert config["generator"]["c_dim"] == 2 and config["training"]["kimg"] == pytest.approx(0.008)
    assert (out / "samples.png").is_file()  # the grid of a conditional model cycles its classes

    random_images(tmp_path / "plain", 6, seed=4)
    assert main(["finetune", str(src), "--data", str(tmp_path / "plain"), "--out", str(tmp_path / "o2"), *SHORT]) == 1
    err = _one_line_error(capsys)
    assert "conditional (2 classes) but the data has no labels" in err and "dataset.json" in err
    assert not (tmp_path / "o2").exists()


def test_a_feature_extractor_typo_stops_finetune_before_training(tmp_path, capsys):
    src = tiny_gan(seed=1).save(tmp_path / "src")
    random_images(tmp_path / "imgs", 8, seed=2)
    out = tmp_path / "run"
    code = main(["finetune", str(src), "--data", str(tmp_path / "imgs"), "--out", str(out), *SHORT, "--aug", "none",
                 "--metrics", "fid", "--feature-extractor", "vgg16pr"])  # fmt: skip
    assert code == 1
    err = _one_line_error(capsys)
    assert "unknown feature extractor 'vgg16pr' (did you mean vgg16-pr?)" in err
    assert not out.exists()  # nothing trained, nothing written


def test_renamed_options_and_their_old_spellings(tmp_path, monkeypatch, capsys):
    """--ada-target and --xflip; the old --target and --mirror (which meant something else in
    `rank --target` and `ganzoo mirror`) still work, with one warning line each."""
    import ganzoo.train.runner

    calls = []

    def fake_finetune(source, data, out, **kwargs):
        calls.append(kwargs)
        return out

    monkeypatch.setattr(ganzoo.train.runner, "finetune", fake_finetune)
    base = ["finetune", "src", "--data", str(tmp_path / "imgs"), "--out", str(tmp_path / "run")]
    assert main(base + ["--ada-target", "0.7", "--xflip"]) == 0
    assert capsys.readouterr().err == ""
    assert main(base + ["--target", "0.7", "--mirror"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "warning: --target is deprecated in finetune; use --ada-target",
        "warning: --mirror is deprecated in finetune; use --xflip"]  # fmt: skip
    assert [(c["options"].target, c["options"].mirror) for c in calls] == [(0.7, True), (0.7, True)]
    assert main(base) == 0 and (calls[-1]["options"].target, calls[-1]["options"].mirror) == (None, False)
    assert main(base + ["--target", "0.7", "--ada-target", "0.5"]) == 1
    err = capsys.readouterr().err
    assert "--target is the old spelling of --ada-target; give only --ada-target" in err.splitlines()[-1]
    assert len(calls) == 3
