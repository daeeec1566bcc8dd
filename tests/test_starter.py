"""The bundled starter zoo: loads, generates, ranks and finetunes with no network at all."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.cli import main
from ganzoo.hub import pull_checkpoint
from ganzoo.registry import bundled_dir, get_entry, list_models
from ganzoo.starter import CLASSES, MODELS, classes_stream, domain_stream, render_domain, write_domain
from helpers import threads_for_tests

NAMES = [m.name for m in MODELS]
#: The class-conditional starter models (GP-GAN, BigGAN): classes discs, stripes, primitives-ps.
CONDITIONAL = [m.name for m in MODELS if m.architecture != "stylegan2"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No network: the Hub is offline and its endpoint unreachable."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    threads = torch.get_num_threads()
    torch.set_num_threads(threads_for_tests())
    yield
    torch.set_num_threads(threads)


def test_toy_domains_are_deterministic_per_index_and_different():
    a = render_domain("discs", [5, 0, 7])
    assert a.shape == (3, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a[1], render_domain("discs", [0])[0])  # image i depends only on i
    assert not np.array_equal(a[0], a[1])
    discs, stripes = render_domain("discs", range(64)), render_domain("stripes", range(64))
    # Discs are flat away from the disc; stripes vary along every row: mean |horizontal gradient|.
    grad = lambda x: np.abs(np.diff(x.astype(float), axis=2)).mean()  # noqa: E731
    assert grad(stripes) > 2 * grad(discs)
    stream = domain_stream("stripes", channels=1)
    images, labels = stream.get(torch.arange(4))
    assert images.shape == (4, 1, 32, 32) and labels is None


@pytest.mark.parametrize("name", NAMES)
def test_bundled_entries_load_offline_with_their_provenance(name):
    entry = get_entry(name)
    assert entry.bundled and entry.license == "apache-2.0" and entry.resolution == 32
    result = pull_checkpoint(name)
    assert result.origin == "bundled" and result.path == bundled_dir(name)
    gan = ganzoo.load(name)
    assert gan.metadata.resolution == 32 and gan.G is not None and gan.D is not None
    assert gan.architecture.name == get_entry(name).architecture
    config = gan.config
    assert config["source"]["bundled"] is True and config["license"] == "apache-2.0"
    assert "no real images" in " ".join(config["lineage"][-1]["notes"])
    runs = config["source"]["training_runs"]
    assert runs and all(r["command"].startswith("python scripts/train_starter_zoo.py") for r in runs)
    assert config["training"]["kimg"] > 0


def test_generate_main_job_offline(tmp_path):
    out = tmp_path / "grid.png"
    assert main(["generate", "primitives-ps-stylegan2-32", "--seeds", "0-15", "--out", str(out)]) == 0
    assert Image.open(out).size == (4 * 32, 4 * 32)


def test_classes_stream_labels_each_image_with_its_domain():
    from ganzoo.synth import render

    stream = classes_stream()
    images, labels = stream.get(torch.arange(6))
    assert labels.argmax(1).tolist() == [0, 1, 2, 0, 1, 2] and CLASSES == ("discs", "stripes", "primitives-ps")
    assert torch.equal(stream.labels_at(torch.arange(6)), labels)
    nhwc = images.permute(0, 2, 3, 1).numpy()
    assert np.array_equal(nhwc[3], render_domain("discs", [1])[0])  # draw 3 = discs image 1
    assert np.array_equal(nhwc[4], render_domain("stripes", [1])[0])
    assert np.array_equal(nhwc[5], render("primitives-ps", [1], 32)[0])


@pytest.mark.parametrize("name", CONDITIONAL)
def test_conditional_starters_draw_the_class_asked_for(name, tmp_path, capsys):
    """``--class discs`` works offline, and each class looks like its domain: with the weight-free
    pixels extractor, class discs is nearer to disc images than class stripes is, and the other
    way round."""
    gan = ganzoo.load(name)
    assert gan.class_names == list(CLASSES) and gan.metadata.num_classes == 3
    out = tmp_path / "discs.png"
    assert main(["generate", name.replace("-32", ""), "--class", "discs", "--seeds", "0-3", "--out", str(out)]) == 0
    assert Image.open(out).size == (2 * 32, 2 * 32)
    from ganzoo.metrics.evaluate import evaluate

    for domain, other in (("discs", "stripes"), ("stripes", "discs")):
        target = write_domain(domain, 100, tmp_path / domain, seed=77)
        fid = {cls: evaluate(name, target, metrics=["fid"], num_gen=100, feature_extractor="pixels", progress=False,
                             class_idx=CLASSES.index(cls))["fid"] for cls in (domain, other)}  # fmt: skip
        # Measured (pixels features; forward passes only, so CPUs differ by rounding, ~1e-4 of a
        # FID): own class / other class 0.34-0.75 over both models and domains.
        assert fid[domain] < fid[other], (name, domain, fid)


def test_metrics_of_one_class_from_the_command_line(tmp_path, capsys):
    target = write_domain("stripes", 40, tmp_path / "t", seed=3)
    base = ["metrics", "gpgan-starter", "--data", str(target), "--metrics", "fid", "--num-gen", "60",
            "--feature-extractor", "pixels"]  # fmt: skip
    fids = {}
    for cls in ("stripes", "1", "discs"):
        assert main([*base, "--class", cls, "--json", "-"]) == 0
        fids[cls] = json.loads(capsys.readouterr().out)["fid"]
    assert fids["stripes"] == fids["1"] and fids["stripes"] < fids["discs"]  # by name or index; one class's samples
    assert main([*base, "--class", "squares"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown class 'squares'" in err and "discs, stripes, primitives-ps" in err


@pytest.mark.parametrize("name", CONDITIONAL)
def test_finetune_a_conditional_starter_offline(name, tmp_path):
    target = write_domain("discs", 8, tmp_path / "t", seed=9)
    (target / "dataset.json").write_text(json.dumps({"labels": [[f"{i:08d}.png", 0] for i in range(8)]}))
    out = tmp_path / "run"
    assert main(["finetune", name, "--data", str(target), "--kimg", "0.008", "--batch", "4", "--snap", "0.008",
                 "--out", str(out)]) == 0  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["lineage"][-1]["registry"] == name and config["class_names"] == list(CLASSES)
    assert config["architecture"] == get_entry(name).architecture
    if config["architecture"] == "biggan":  # a finetune continues the source's G average at once
        assert json.loads((out / "run.json").read_text())["options"]["ema_start_kimg"] == 0.0


def test_pull_a_bundled_model_downloads_nothing(capsys):
    assert main(["pull", "stripes"]) == 0
    out = capsys.readouterr().out
    assert "bundled, no download" in out and str(bundled_dir("stripes-stylegan2-32")) in out.replace("\n", "")
    assert main(["pull", "stripes", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["origin"] == "bundled" and data["registry"] == "stripes-stylegan2-32"


def test_export_a_bundled_model_by_name(tmp_path):
    out = tmp_path / "discs.pt"
    assert main(["export", "discs", str(out)]) == 0
    exported = torch.load(out, weights_only=True)
    assert set(exported) >= {"G", "G_ema", "D"}
    assert torch.equal(exported["G_ema"]["mapping.fc0.weight"], ganzoo.load("discs").G_ema.mapping.fc0.weight)


def test_list_marks_bundled_models(capsys):
    assert set(NAMES) <= set(list_models())
    assert main(["list", "--json", "-"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert all(rows[n]["source"] == "bundled" for n in NAMES)


@pytest.mark.parametrize("domain", ["discs", "stripes"])
def test_rank_offline_picks_the_model_of_the_target_domain(domain, tmp_path):
    target = write_domain(domain, 60, tmp_path / domain, seed=123)
    result = ganzoo.rank(target, candidates=NAMES, feature_extractor="pixels", num_gen=200, progress=False)
    # Measured: the domain's model at FID 5.2 (discs) / 10.8 (stripes), the next candidate 12.8 / 15.4.
    assert result.recommended == f"{domain}-stylegan2-32"
    by_name = {c.name: c for c in result.candidates}
    other = "stripes" if domain == "discs" else "discs"
    assert by_name[f"{domain}-stylegan2-32"].fid < by_name[f"{other}-stylegan2-32"].fid


def test_rank_default_candidates_offline_scores_the_bundled_ones(tmp_path, capsys):
    target = write_domain("discs", 40, tmp_path / "t", seed=5)
    code = main(["rank", "--target", str(target), "--feature-extractor", "pixels", "--num-gen", "100",
                 "--json", str(tmp_path / "r.json")])  # fmt: skip
    assert code == 0
    data = json.loads((tmp_path / "r.json").read_text())
    # The discs model, or a conditional one with a discs class (scored on its mix of classes; at
    # 100 samples against 40 images the two are within the noise of FID).
    assert data["recommended"] in {"discs-stylegan2-32", *CONDITIONAL}
    fid = {c["name"]: c["fid"] for c in data["candidates"]}
    # Measured: discs 15.8 against stripes 18.4 and primitives-ps 51.7 (gpgan-starter 15.2).
    assert fid["discs-stylegan2-32"] < min(fid["stripes-stylegan2-32"], fid["primitives-ps-stylegan2-32"])
    # Offline, the default candidates are the models on this machine; one note says so.
    assert {c["name"] for c in data["candidates"]} == set(NAMES)
    assert all(c.get("fid") is not None for c in data["candidates"])
    assert any(n.startswith("offline (HF_HUB_OFFLINE=1): ") for n in data["notes"])


def test_finetune_a_bundled_model_offline(tmp_path):
    target = write_domain("stripes", 16, tmp_path / "t", seed=9)
    out = tmp_path / "run"
    assert main(["finetune", "discs", "--data", str(target), "--kimg", "0.008", "--batch", "4", "--snap", "0.008",
                 "--out", str(out)]) == 0  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["lineage"][-1]["registry"] == "discs-stylegan2-32"
    assert config["license"] == "apache-2.0"


def test_damaged_bundled_file_is_a_clear_error(tmp_path, monkeypatch, capsys):
    copy = tmp_path / "discs-stylegan2-32"
    shutil.copytree(bundled_dir("discs-stylegan2-32"), copy)
    data = bytearray((copy / "generator.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "generator.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr("ganzoo.registry.bundled_dir", lambda name: copy)
    assert main(["generate", "discs", "--seeds", "0", "--out", str(tmp_path / "g.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "damaged" in err and "generator.safetensors" in err
    assert (copy / "generator.safetensors").is_file()  # package files are never removed


def test_merge_two_bundled_models_offline(tmp_path, capsys):
    out = tmp_path / "duo"
    args = ["merge", "discs", "stripes", "--root-kimg", "0.016", "--merge-kimg", "0.016", "--batch", "8", "--out", str(out)]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["class_names"] == ["discs", "stripes"]
    gan = ganzoo.load(out)
    assert gan.G_ema.c_dim == 2 and gan.G_ema.img_resolution == 32
    grid = tmp_path / "stripes.png"
    assert main(["generate", str(out), "--class", "stripes", "--seeds", "0-3", "--out", str(grid)]) == 0
    assert grid.is_file()


def test_merged_card_is_titled_by_its_classes_and_names_its_sources(tmp_path, capsys):
    out = tmp_path / "duo"
    args = ["merge", "discs", "stripes", "--root-kimg", "0.016", "--merge-kimg", "0.016", "--batch", "8", "--out", str(out)]
    assert main(args) == 0
    card = (out / "README.md").read_text()
    assert "ganzoo-checkpoint" not in card and "unknown source" not in card
    assert "\n# discs + stripes" in card
    lineage = card.split("## Lineage")[1].split("\n## ")[0]
    steps = [line for line in lineage.splitlines() if line[:1].isdigit()]
    # The lineage starts with the sources (each with its registry entry), then the root's own
    # history, then the merge itself.
    assert steps[0].startswith("1. class `discs`: ") and "`discs-stylegan2-32`" in steps[0]
    assert steps[1].startswith("2. class `stripes`: ") and "`stripes-stylegan2-32`" in steps[1]
    assert any("GAN Cocktail" in s and "2 classes" in s for s in steps[2:])
    # License and citation of both ancestors; the usage snippet runs on a conditional model.
    citations = card.split("## License and citation")[1]
    assert "**discs-stylegan2-32**" in citations and "**stripes-stylegan2-32**" in citations
    assert f'ganzoo.load("{out}")' in card and "class_idx=\"discs\"" in card and "--class discs" in card
    gan = ganzoo.load(out)
    assert gan.sample(seeds=[0], class_idx="discs").shape == (1, 32, 32, 3)
