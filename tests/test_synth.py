"""Synthetic pretraining data (ganzoo.synth): the four kinds, determinism, files, CLI, training."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ganzoo import synth
from ganzoo.cli import main
from ganzoo.data import ImageDataset
from ganzoo.errors import GanzooError
from ganzoo.synth._render import pink_noise
from ganzoo.train.dataset import load_training_images
from ganzoo.train.runner import finetune
from helpers import tiny_gan


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The test machine's cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("kind", synth.KINDS)
def test_shape_dtype_and_image_i_depends_only_on_kind_seed_i(kind):
    images = synth.render(kind, [3, 5, 7], 32, seed=1)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert np.array_equal(synth.render(kind, [5], 32, seed=1)[0], images[1])
    assert np.array_equal(synth.render(kind, np.array([7, 0]), 32, seed=1)[0], images[2])
    assert not np.array_equal(synth.render(kind, [5], 32, seed=2)[0], images[1])
    assert len({image.tobytes() for image in images}) == 3
    assert images.std() > 10  # not blank
    assert synth.render(kind, [0], 33).shape == (1, 33, 33, 3)  # odd sizes too


def _radial_power_slope(field: np.ndarray) -> float:
    """Log-log slope of the radially averaged power spectrum over the mid frequencies."""
    size = field.shape[-1]
    power = np.abs(np.fft.fft2(field)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")
    radius = np.rint(np.hypot(fy, fx) * size).astype(int)
    rings = np.arange(4, size // 3)
    mean_power = np.array([power[radius == r].mean() for r in rings])
    return float(np.polyfit(np.log(rings), np.log(mean_power), 1)[0])


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_pink_noise_power_spectrum_falls_as_f_to_minus_two_alpha(alpha):
    rng = np.random.default_rng(0)
    field = pink_noise(rng, 128, np.full((3, 2), alpha))
    assert field.shape == (3, 128, 128) and abs(field.mean()) < 1e-3 * field.std()
    slopes = [_radial_power_slope(channel) for channel in field]
    assert np.allclose(slopes, -2 * alpha, atol=0.25), slopes


def _centre(images: np.ndarray, resolution: int) -> np.ndarray:
    half = int(0.08 * resolution)
    middle = resolution // 2
    return images[:, middle - half : middle + half, middle - half : middle + half]


def test_salient_object_in_primitives_s_and_ps():
    resolution, indices = 64, range(12)
    plain = synth.render("primitives", indices, resolution)
    salient = synth.render("primitives-s", indices, resolution)
    textured = synth.render("primitives-ps", indices, resolution)
    # Primitives: the last, small shapes break up the middle; Primitives-S: one solid colour there.
    centre_plain, centre_salient = _centre(plain, resolution), _centre(salient, resolution)
    assert sum(len(np.unique(c.reshape(-1, 3), axis=0)) > 1 for c in centre_plain) >= 10
    assert all(len(np.unique(c.reshape(-1, 3), axis=0)) == 1 for c in centre_salient)
    for p, s, ps in zip(plain, salient, textured):
        region = np.any(p != s, axis=-1)           # the salient object (where it changed Primitives)
        assert 0.1 < region.mean() < 0.6           # circle >= 0.19, rectangle >= 0.14, at most 0.57 of R²
        # Outside it, Primitives-PS shows the same shapes as Primitives (same layout stream) ...
        shapes = np.any(p != p[0, 0], axis=-1) & ~region
        assert np.mean(np.all(ps[shapes] == p[shapes], axis=-1)) > 0.5
        # ... inside it, a pink-noise texture: neither the shapes below nor one solid colour.
        assert np.mean(np.all(ps[region] == p[region], axis=-1)) < 0.05
        assert len(np.unique(ps[region], axis=0)) > 20


def test_pinknoise_is_the_background_of_primitives_ps():
    background = synth.render("pinknoise", [4], 48)[0]
    textured = synth.render("primitives-ps", [4], 48)[0]
    assert 0.02 < np.mean(np.all(background == textured, axis=-1)) < 0.9


def test_bad_arguments():
    with pytest.raises(GanzooError, match="pinknoise, primitives, primitives-s, primitives-ps"):
        synth.render("dead-leaves", [0], 32)
    with pytest.raises(GanzooError, match="at least 8"):
        synth.render("primitives", [0], 4)
    with pytest.raises(GanzooError, match="non-negative"):
        synth.render("primitives", [-1], 32)
    for spec in ("synth:", "synth:nope", "synth:primitives:x", "synth:primitives:-1", "synth:primitives:1:2"):
        with pytest.raises(GanzooError, match="primitives-ps"):
            synth.training_stream(spec, 32, 3)
    with pytest.raises(GanzooError, match="1 or 3 channels"):
        synth.training_stream("synth:primitives", 32, 4)


def test_write_same_bytes_for_any_worker_count(tmp_path):
    one = synth.write("primitives-ps", 20, 32, tmp_path / "one.zip", seed=3, workers=1, progress=False)
    two = synth.write("primitives-ps", 20, 32, tmp_path / "two.zip", seed=3, workers=2, progress=False)
    assert one.read_bytes() == two.read_bytes()
    folder = synth.write("primitives-ps", 20, 32, tmp_path / "dir", seed=3, workers=2, progress=False)
    with zipfile.ZipFile(one) as archive:
        names = archive.namelist()
        assert names == [f"{i:08d}.png" for i in range(20)]
        assert all(archive.read(name) == (folder / name).read_bytes() for name in names)
    # The files hold exactly render()'s images, and ganzoo.data reads them back.
    read = ImageDataset(one).read_all()
    assert np.array_equal(read, synth.render("primitives-ps", range(20), 32, seed=3))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left


def test_write_refuses_to_overwrite_and_leaves_nothing_on_error(tmp_path, monkeypatch):
    out = synth.write("primitives", 3, 16, tmp_path / "set", progress=False)
    with pytest.raises(GanzooError, match="already exists"):
        synth.write("primitives", 3, 16, out, progress=False)
    synth.write("pinknoise", 2, 16, out, progress=False, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["00000000.png", "00000001.png"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("ganzoo.synth._write.encode_chunk", interrupted)
    for target in (tmp_path / "half", tmp_path / "half.zip"):
        with pytest.raises(KeyboardInterrupt):
            synth.write("primitives", 40, 16, target, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_cli_writes_folder_and_zip(tmp_path, capsys):
    assert main(["synth", "primitives-s", "--n", "5", "--resolution", "16", "--out", str(tmp_path / "d")]) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [f"{i:08d}.png" for i in range(5)]
    args = ["synth", "pinknoise", "--n", "6", "--resolution", "16", "--out", str(tmp_path / "p.zip"), "--seed", "2",
            "--workers", "2", "--json"]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 6 and report["seed"] == 2
    with zipfile.ZipFile(tmp_path / "p.zip") as archive:
        assert archive.testzip() is None and len(archive.namelist()) == 6


def test_cli_bad_kind_is_one_line_and_writes_nothing(tmp_path, capsys):
    assert main(["synth", "leaves", "--n", "5", "--resolution", "16", "--out", str(tmp_path / "x.zip")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown synthetic data kind 'leaves'" in err and "primitives-ps" in err
    assert list(tmp_path.iterdir()) == []


def test_training_stream_shapes_hash_and_grayscale():
    stream = synth.training_stream("synth:primitives", 32, 3)
    images, labels = stream.get(torch.tensor([0, 9]))
    assert images.dtype == torch.uint8 and images.shape == (2, 3, 32, 32) and labels is None
    assert np.array_equal(images.permute(0, 2, 3, 1).numpy(), synth.render("primitives", [0, 9], 32))
    gray, _ = synth.training_stream("synth:primitives", 32, 1).get(torch.tensor([0, 9]))
    assert gray.shape == (2, 1, 32, 32)
    luma = images.double().permute(0, 2, 3, 1) @ torch.tensor([0.299, 0.587, 0.114], dtype=torch.double)
    assert (luma - gray[:, 0].double()).abs().max() <= 1
    assert stream.sha256 == synth.training_stream("synth:primitives", 32, 3).sha256
    hashes = {synth.training_stream(spec, 32, 3).sha256 for spec in ("synth:primitives:1", "synth:primitives-s", "synth:primitives")}
    assert len(hashes) == 3 and stream.describe()["definition"]["generator"] == synth.GENERATOR_VERSION
    assert load_training_images("synth:primitives-ps:4", 32, 3).definition["seed"] == 4


def test_finetune_on_synthetic_data(tmp_path):
    out = finetune(tiny_gan(seed=1), "synth:primitives", tmp_path / "run", recipe="scratch", kimg=0.008, batch=4,
                   snap=0.008, progress=False)  # fmt: skip
    config = json.loads((Path(out) / "config.json").read_text())
    data = config["lineage"][-1]["data"]
    assert data["path"] == "synth:primitives" and data["definition"]["kind"] == "primitives"
    assert config["training"]["kimg"] == pytest.approx(0.008)
