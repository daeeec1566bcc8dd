"""Synthetic pretraining data (ganzoo.synth): the four kinds, determinism, files, CLI, training."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ganzoo import synth
from ganzoo.cli import main
from ganzoo.data import ImageDataset
from ganzoo.errors import DatasetError, GanzooError
from ganzoo.synth._render import _POLYGON, _TRIANGLE, _convex_polygons, pink_noise
from ganzoo.train.dataset import load_training_images
from ganzoo.train.pretrain import describe_data
from ganzoo.train.runner import finetune
from helpers import tiny_gan


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models, shared cores


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
    assert np.array_equal(ImageDataset(tmp_path / "d").read_all(), synth.render("primitives-s", range(5), 16))
    args = ["synth", "pinknoise", "--n", "6", "--resolution", "16", "--out", str(tmp_path / "p.zip"), "--seed", "2",
            "--workers", "2", "--json", "-"]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 6 and report["seed"] == 2
    with zipfile.ZipFile(tmp_path / "p.zip") as archive:
        assert archive.testzip() is None and len(archive.namelist()) == 6
    # The images of the kind and seed asked for (seed 2, not the default 0).
    assert np.array_equal(ImageDataset(tmp_path / "p.zip").read_all(), synth.render("pinknoise", range(6), 16, seed=2))


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


# sha256 of render(kind, range(4), 64) computed before the color/shapes options were added: the
# defaults must keep giving the paper's images (GENERATOR_VERSION ganzoo.synth/1).
_DEFAULT_IMAGES_SHA256 = {
    "pinknoise": "9809db46a8ad770d11458ef7be7d9641a16984f60a72f62aac42a0f8779539d3",
    "primitives": "35354f4bcd96c5a18beb295b635b8c0da11cd00f2fa1561a870260661b34ff84",
    "primitives-s": "867cee9555fbf97be64b09f87c4cc24185cac64a22aa8c1331591859219a2580",
    "primitives-ps": "ff62e0a3b9553c855c21526d6594fd994308b2f7a7268f3c3c9c45ee333351bf",
}


@pytest.mark.parametrize("kind", synth.KINDS)
def test_default_images_unchanged_by_the_options(kind):
    assert synth.GENERATOR_VERSION == "ganzoo.synth/1"
    # Exact bytes on purpose (a data set is named by its kind, seed and generator version): checked
    # the same under numpy's baseline, AVX2 and AVX-512 code paths (NPY_DISABLE_CPU_FEATURES, as
    # scripts/check_portable.sh sets it).
    assert hashlib.sha256(synth.render(kind, range(4), 64).tobytes()).hexdigest() == _DEFAULT_IMAGES_SHA256[kind]
    spelled_out = {"color": "per-channel"} if kind in synth.OPTION_KINDS["color"] else {}
    if kind in synth.OPTION_KINDS["shapes"]:
        spelled_out["shapes"] = "rect,ellipse,circle,line"  # the defaults, in any order
    assert np.array_equal(synth.render(kind, range(4), 64, **spelled_out), synth.render(kind, range(4), 64))


def _channel_correlations(images: np.ndarray, differences: bool = False) -> np.ndarray:
    """Pearson correlations of the channel pairs whose channels both vary (std > 8), all images.

    ``differences``: of horizontal pixel differences, which are not dominated by the few lowest
    frequencies (two independent smooth fields often correlate by chance over one image).
    """
    correlations = []
    for image in images.astype(np.float64):
        values = (np.diff(image, axis=1) if differences else image).reshape(-1, 3)
        varies = image.reshape(-1, 3).std(axis=0) > 8
        correlations += [np.corrcoef(values[:, a], values[:, b])[0, 1] for a, b in ((0, 1), (0, 2), (1, 2))
                         if varies[a] and varies[b]]  # fmt: skip
    return np.abs(np.array(correlations))


def test_colour_correlated_pink_noise():
    correlated = synth.render("pinknoise", range(32), 64, color="correlated")
    independent = synth.render("pinknoise", range(32), 64, color="per-channel")
    assert np.array_equal(independent, synth.render("pinknoise", range(32), 64))  # the default
    strong, weak = _channel_correlations(correlated), _channel_correlations(independent, differences=True)
    assert len(strong) > 40 and strong.min() > 0.99   # every channel an affine function of one field
    assert len(weak) > 40 and np.median(weak) < 0.15
    # Still pink noise, in many colours: a one-field spectrum, hue varying between images.
    assert abs(_radial_power_slope(correlated[0].mean(axis=-1))) > 1
    assert len({tuple(np.round(image.reshape(-1, 3).mean(axis=0), -1)) for image in correlated}) > 20
    # Primitives-PS: same shapes, correlated background and texture; image i still depends only on its inputs.
    textured = synth.render("primitives-ps", [2, 3], 48, seed=1, color="correlated")
    assert not np.array_equal(textured, synth.render("primitives-ps", [2, 3], 48, seed=1))
    assert np.array_equal(synth.render("primitives-ps", [3], 48, seed=1, color="correlated")[0], textured[1])


def test_convex_polygons_have_their_vertex_counts_and_are_convex():
    rng = np.random.default_rng(0)
    kinds = np.array([_TRIANGLE, _POLYGON, 0, _POLYGON] * 25)
    centres, radii = rng.uniform(0, 64, size=(100, 2)), rng.uniform(1, 20, size=(100, 2))
    polygons = _convex_polygons(rng, kinds, centres, radii, rng.uniform(0, 180, size=100))
    assert len(polygons) == 75
    counts = [len(flat) // 2 for flat in polygons]
    assert counts[::3] == [3] * 25 and set(counts) - {3} and all(3 <= k <= 8 for k in counts)
    for flat in polygons:
        points = np.array(flat).reshape(-1, 2)
        edges = np.roll(points, -1, axis=0) - points
        turns = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
        assert np.all(turns > 0) or np.all(turns < 0)  # every corner turns the same way: convex


@pytest.mark.parametrize("shapes", ["triangle", "polygon"])
def test_triangles_and_polygons_are_drawn(shapes):
    images = synth.render("primitives", range(4), 64, seed=2, shapes=shapes)
    for image in images:
        # Only polygons are drawn, so every colour besides the background's is one of theirs.
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 30
        assert np.mean(np.all(image == image[0, 0], axis=-1)) < 0.9
    assert np.array_equal(synth.render("primitives", [3], 64, seed=2, shapes=shapes)[0], images[3])
    mixed = synth.render("primitives-s", range(4), 64, seed=2, shapes=["line", "circle", "ellipse", "rect", shapes])
    assert not np.array_equal(mixed, synth.render("primitives-s", range(4), 64, seed=2))


@pytest.mark.parametrize("call, message", [
    (lambda: synth.render("primitives", [0], 32, color="correlated"), "no option 'color'"),
    (lambda: synth.render("pinknoise", [0], 32, shapes="polygon"), "no option 'shapes'"),
    (lambda: synth.render("pinknoise", [0], 32, color="mono"), "per-channel, correlated"),
    (lambda: synth.render("primitives", [0], 32, shapes="line,star"), "line, circle, ellipse, rect, triangle, polygon"),
    (lambda: synth.training_stream("synth:pinknoise?colour=correlated", 32, 3), "not NAME=VALUE"),
    (lambda: synth.training_stream("synth:pinknoise?color", 32, 3), "not NAME=VALUE"),
    (lambda: synth.training_stream("synth:pinknoise?color=correlated&color=per-channel", 32, 3), "repeated"),
    (lambda: synth.training_stream("synth:primitives:1?shapes=", 32, 3), "use one or more of"),
    (lambda: synth.training_stream("synth:primitives?color=correlated", 32, 3), "no option 'color'"),
])  # fmt: skip
def test_bad_options_are_one_line_dataset_errors(call, message):
    with pytest.raises(DatasetError, match=message) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_options_are_in_the_stream_definition_and_hash():
    def stream(spec):
        return synth.training_stream(spec, 32, 3)

    plain = stream("synth:primitives-ps:1")
    assert "options" not in plain.describe()["definition"]  # the paper's streams keep their hashes
    # The hash also covers the spec text (as synth:KIND vs synth:KIND:0 already differ); the
    # definition is canonical: equal images, equal definitions.
    spelled_out = stream("synth:primitives-ps:1?shapes=line,circle,ellipse,rect&color=per-channel")
    assert spelled_out.definition == plain.definition
    polygons = stream("synth:primitives-ps:1?shapes=polygon,line&color=correlated")
    assert polygons.describe()["definition"]["options"] == {"color": "correlated", "shapes": ["line", "polygon"]}
    assert polygons.definition == stream("synth:primitives-ps:1?color=correlated&shapes=line,polygon").definition
    assert polygons.sha256 == stream("synth:primitives-ps:1?shapes=polygon,line&color=correlated").sha256
    assert len({plain.sha256, polygons.sha256, stream("synth:primitives-ps:1?color=correlated").sha256}) == 3
    images, _ = polygons.get(torch.tensor([5]))
    expected = synth.render("primitives-ps", [5], 32, seed=1, color="correlated", shapes="line,polygon")
    assert np.array_equal(images.permute(0, 2, 3, 1).numpy(), expected)
    assert synth.parse_spec("synth:pinknoise:2?color=correlated") == ("pinknoise", 2, {"color": "correlated"})
    assert describe_data("synth:pinknoise:2?color=correlated").startswith("trained on synthetic pinknoise, no real")


def test_cli_options(tmp_path, capsys):
    args = ["synth", "primitives-ps", "--n", "3", "--resolution", "16", "--out", str(tmp_path / "o.zip"),
            "--color", "correlated", "--shapes", "line,triangle", "--json", "-"]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["options"] == {"color": "correlated", "shapes": ["line", "triangle"]}
    expected = synth.render("primitives-ps", range(3), 16, color="correlated", shapes="line,triangle")
    assert np.array_equal(ImageDataset(tmp_path / "o.zip").read_all(), expected)
    args = ["synth", "primitives", "--n", "3", "--resolution", "16", "--out", str(tmp_path / "x"), "--color", "correlated"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no option 'color'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.zip"]
