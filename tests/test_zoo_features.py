"""Precomputed features on the Hub, end to end: ``scripts/publish_zoo.py --features`` publishes
sample and source-dataset features of a registry entry to a self-hosted mirror (``--mirror``), a
real ``olah`` Hub server on loopback serves it, and ``ganzoo rank`` downloads the features with
the real ``huggingface_hub`` client instead of generating samples ("generated" regime) or uses
the source-dataset features ("real" regime).

The entry is ``cifar10-stylegan2-32`` converted from the tiny32 StyleGAN2-ADA fixture (the dry
run's stand-in for the download). Features come from a random-weight ResNet-18 at 32 px
(``--random-weights``, recorded in every file): meaningless values, a fixed function of the images.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from ganzoo.metrics.features import RandomWeightsWarning
from ganzoo.ranking import rank, real_features_name, sample_features_name
from helpers import random_images, threads_for_tests
from olah_server import OlahServer

ENTRY = "cifar10-stylegan2-32"
REPO = "ganzoo/cifar10-stylegan2-32"
EXTRACTOR = "timm:resnet18@32"
NUM_GEN = 24
NUM_REAL = 12
FIXTURE_PKL = "stylegan2-ada/tiny32/tiny32-snapshot.pkl"
SCORES = ("fid", "kid", "precision", "recall", "density", "coverage")


@pytest.fixture(autouse=True)
def _quiet_and_one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(threads_for_tests())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        yield
    torch.set_num_threads(previous)


def _publish_zoo():
    spec = importlib.util.spec_from_file_location("publish_zoo", Path(__file__).resolve().parents[1] / "scripts" / "publish_zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _images(folder: Path, count: int, seed: int) -> Path:
    random_images(folder, count, size=32, seed=seed, name="{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, shared_fixtures):
    """The entry published with features to an olah mirror that is serving; plus a target."""
    root = tmp_path_factory.mktemp("zoo-features")
    real = _images(root / "source-dataset", NUM_REAL, seed=0)
    target = _images(root / "target", 16, seed=1)
    olah = OlahServer(root / "olah")
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        # (No HF_HUB_OFFLINE here: huggingface_hub reads it once, at import, for the whole session.)
        mp.setenv("GANZOO_CACHE", str(root / "publisher-cache"))
        code = _publish_zoo().main(["--dry-run", "--fixture", str(shared_fixtures / FIXTURE_PKL), "--only", ENTRY,
                                    "--out", str(root / "out"), "--features", EXTRACTOR, "--num-gen", str(NUM_GEN),
                                    "--random-weights", "--real-data", f"{ENTRY}={real}", "--mirror", str(olah.mirrors)])  # fmt: skip
    assert code == 0
    olah.start()
    try:
        yield {"root": root, "olah": olah, "out": root / "out" / ENTRY, "real": real, "target": target}
    finally:
        olah.stop()


@pytest.fixture
def client(zoo, tmp_path, monkeypatch):
    """A fresh HF cache and ganzoo cache; the real Hub client pointed at the olah mirror."""
    for name in list(os.environ):
        if name.startswith("HF_") or name in ("GANZOO_CACHE", "GANZOO_REGISTRY_PATH"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", zoo["olah"].url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "ganzoo"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return zoo


def _rank(zoo, candidates, **kwargs):
    options = dict(candidates=candidates, num_gen=NUM_GEN, feature_extractor=EXTRACTOR, allow_random_weights=True,
                   progress=False)  # fmt: skip
    options.update(kwargs)
    return rank(zoo["target"], **options)


def _local_copy_without_features(zoo, path: Path) -> Path:
    shutil.copytree(zoo["out"], path, ignore=shutil.ignore_patterns("features"))
    return path


def _no_generation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("samples were generated (or weights pulled) for a candidate with published features")

    monkeypatch.setattr("ganzoo.metrics.cache._sample_batches", refuse)
    monkeypatch.setattr("ganzoo.hub.pull_checkpoint", refuse)
    monkeypatch.setattr("ganzoo.checkpoint.GAN.load", refuse)


def test_publish_writes_features_that_record_their_extractor(zoo):
    from ganzoo.metrics.cache import read_feature_file

    repo = zoo["olah"].mirrors / "models" / REPO
    for name in (sample_features_name(EXTRACTOR), real_features_name(EXTRACTOR)):
        assert (repo / name).read_bytes() == (zoo["out"] / name).read_bytes()
    samples = read_feature_file(repo / sample_features_name(EXTRACTOR))
    assert samples.features.shape[0] == NUM_GEN and samples.key["kind"] == "samples"
    assert samples.key["weights"] == "random:seed0" and samples.key["extractor"] == EXTRACTOR  # never passes as pretrained
    real = read_feature_file(repo / real_features_name(EXTRACTOR))
    assert real.features.shape[0] == NUM_REAL and real.key["kind"] == "dataset" and real.key["weights"] == "random:seed0"
    assert str(zoo["real"]) not in str(real.key)  # the maintainer's paths are not published


def test_rank_downloads_published_features_instead_of_sampling(client, tmp_path, monkeypatch):
    local = _local_copy_without_features(client, tmp_path / "local")
    generated = _rank(client, [str(local)]).candidates[0]  # a local-generation run (fresh cache)
    assert generated.features_from == "generated"

    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "fresh-cache"))
    _no_generation(monkeypatch)
    published = _rank(client, [ENTRY]).candidates[0]
    assert published.name == ENTRY and published.features_from == "published" and published.num_samples == NUM_GEN
    downloaded = list((tmp_path / "hf").rglob(Path(sample_features_name(EXTRACTOR)).name))
    assert downloaded, "the features did not come through the Hub client's cache"
    for score in SCORES:
        assert getattr(published, score) == pytest.approx(getattr(generated, score), rel=1e-6, abs=1e-9), score


def test_real_regime_uses_published_source_dataset_features(client, tmp_path, monkeypatch):
    from ganzoo.data import ImageDataset
    from ganzoo.metrics import fid, precision_recall
    from ganzoo.metrics.cache import dataset_features
    from ganzoo.metrics.features import get_extractor

    local = _local_copy_without_features(client, tmp_path / "local")
    _no_generation(monkeypatch)
    result = _rank(client, [str(local), ENTRY], regime="real")
    rows = {row.name: row for row in result.candidates}
    assert rows[ENTRY].features_from == "published-real" and rows[ENTRY].num_samples == NUM_REAL
    assert rows[str(local)].fid is None and "no published source-dataset features" in rows[str(local)].notes[0]
    assert result.candidates[0].name == ENTRY and result.recommended == ENTRY
    assert any("real regime" in note for note in result.notes)
    # The same numbers as the target against the source dataset, computed here directly.
    extractor = get_extractor(EXTRACTOR, allow_random_weights=True)
    target = dataset_features(ImageDataset(client["target"], channels=3), extractor, progress=False).features
    source = dataset_features(ImageDataset(client["real"], resolution=32, channels=3), extractor, progress=False).features
    assert rows[ENTRY].fid == pytest.approx(fid(target, source), rel=1e-6)
    assert rows[ENTRY].recall == pytest.approx(precision_recall(target, source, k=3)["recall"], rel=1e-6)


def test_features_of_another_extractor_are_never_used(client, monkeypatch):
    """A ranking whose extractor weights differ (here random seed 1 against the published seed 0;
    the same holds for random against pretrained) samples locally and does not score the real regime."""
    from ganzoo.metrics import features

    monkeypatch.setattr(features, "RANDOM_SEED", 1)
    monkeypatch.setattr(features, "_MEMO", {})
    generated = _rank(client, [ENTRY]).candidates[0]
    assert generated.features_from == "generated" and generated.fid is not None  # weights pulled from the mirror
    real = _rank(client, [ENTRY], regime="real").candidates[0]
    assert real.fid is None and "made by another extractor (weights random:seed0)" in real.notes[0]


def test_random_weights_are_refused_for_a_push_to_the_hub(capsys):
    with pytest.raises(SystemExit):
        _publish_zoo().main(["--only", ENTRY, "--features", EXTRACTOR, "--random-weights"])
    assert "--random-weights is for tests" in capsys.readouterr().err
