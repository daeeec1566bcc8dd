"""ganzoo rank: the candidate whose samples formed the target wins; mode-dropping loses; caches.

Candidates are tiny conditional GANs saved as checkpoint directories. ``full`` generates two
modes (its two classes); ``missing`` is the same network with class 1's embedding replaced by
class 0's, so it only ever generates mode 0; ``other`` is an unrelated network. The target is
made of ``full``'s samples of both classes, with seeds the ranking never uses. Features come
from a random-weight ResNet-18 at 32 px (``allow_random_weights``): meaningless in absolute
terms, but a fixed function of the images, which is all the ranking needs.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.cli import main
from ganzoo.errors import DatasetError, GanzooError
from ganzoo.metrics.features import RandomWeightsWarning
from ganzoo.ranking import rank, write_sample_features
from helpers import tiny_gan

EXTRACTOR = "timm:resnet18@32"
NUM_GEN = 64
TARGET_PER_CLASS = 32


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks, shared cores


@pytest.fixture(autouse=True)
def _quiet_random_weights():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        yield


def _full_gan():
    gan = tiny_gan(c_dim=2, seed=0)
    with torch.no_grad():
        gan.G_ema.mapping.embed.weight.mul_(3.0)  # make the two classes clearly different modes
    return gan


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Checkpoint dirs ``full``, ``missing``, ``other`` and the target folder made from ``full``."""
    root = tmp_path_factory.mktemp("zoo")
    full = _full_gan()
    full.save(root / "full")
    missing = _full_gan()
    with torch.no_grad():
        missing.G_ema.mapping.embed.weight[:, 1] = missing.G_ema.mapping.embed.weight[:, 0]
    missing.save(root / "missing")
    tiny_gan(c_dim=2, seed=1).save(root / "other")
    target = root / "target"
    target.mkdir()
    for cls in (0, 1):
        seeds = range(10_000 + 1000 * cls, 10_000 + 1000 * cls + TARGET_PER_CLASS)
        for seed, image in zip(seeds, full.sample(seeds=seeds, class_idx=cls, noise_mode="random")):
            Image.fromarray(image).save(target / f"c{cls}_{seed}.png")
    return root


def _rank(zoo, **kwargs):
    candidates = [str(zoo / name) for name in ("other", "missing", "full")]
    options = dict(candidates=candidates, num_gen=NUM_GEN, feature_extractor=EXTRACTOR, allow_random_weights=True,
                   progress=False)  # fmt: skip
    options.update(kwargs)
    return rank(zoo / "target", **options)


def test_source_of_the_target_ranks_first_and_mode_dropping_ranks_below(zoo, monkeypatch):
    by_fid = _rank(zoo)
    names = [c.name.rsplit("/", 1)[-1] for c in by_fid.candidates]
    assert names[0] == "full"
    assert names.index("missing") > names.index("full")
    assert by_fid.recommended.endswith("full")
    assert all(c.features_from == "generated" for c in by_fid.candidates)

    by_recall = _rank(zoo, metric="recall")
    names = [c.name.rsplit("/", 1)[-1] for c in by_recall.candidates]
    assert names[0] == "full"
    assert names.index("missing") > names.index("full")
    rows = {c.name.rsplit("/", 1)[-1]: c for c in by_recall.candidates}
    # Measured (ATEN_CPU_CAPABILITY default/avx2/avx512, the same to 3 digits): FID full 0.22,
    # missing 0.44, other 4.2; recall 0.906 / 0.812 / 0.078; coverage 0.984 / 0.844 / 0.094.
    assert rows["full"].recall > rows["missing"].recall
    assert rows["full"].coverage > rows["missing"].coverage
    # The second ranking reads everything from the cache: no sampling, no feature extraction.
    assert all(c.features_from == "cache" for c in by_recall.candidates)
    # Same seed, same inputs: the same numbers whichever way they were obtained.
    for a, b in zip(sorted(by_fid.candidates, key=lambda c: c.name), sorted(by_recall.candidates, key=lambda c: c.name)):
        assert (a.fid, a.kid, a.precision, a.recall, a.density, a.coverage) == (b.fid, b.kid, b.precision, b.recall,
                                                                                 b.density, b.coverage)  # fmt: skip


def test_second_rank_uses_cached_target_and_candidate_features(zoo, monkeypatch):
    from ganzoo.metrics import features as features_module

    first = _rank(zoo, candidates=[str(zoo / "full")])

    def no_network_pass(*args, **kwargs):
        raise AssertionError("features were recomputed instead of read from the cache")

    monkeypatch.setattr(features_module.FeatureExtractor, "extract", no_network_pass)
    monkeypatch.setattr("ganzoo.checkpoint.GAN.load", no_network_pass)  # the candidate is never even loaded
    second = _rank(zoo, candidates=[str(zoo / "full")])
    assert second.to_dict()["candidates"][0]["fid"] == first.to_dict()["candidates"][0]["fid"]
    assert second.candidates[0].features_from == "cache"


def test_json_plot_and_determinism_across_caches(zoo, tmp_path, monkeypatch):
    result = _rank(zoo, candidates=[str(zoo / "full"), str(zoo / "other")], json_out=tmp_path / "r.json",
                   plot_out=tmp_path / "r.png", seed=3)  # fmt: skip
    data = json.loads((tmp_path / "r.json").read_text())
    assert data == json.loads(json.dumps(result.to_dict()))
    assert set(data["candidates"][0]) >= {"name", "fid", "kid", "precision", "recall", "density", "coverage"}
    with Image.open(tmp_path / "r.png") as plot:
        assert plot.format == "PNG" and plot.width > 100
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "fresh-cache"))
    again = _rank(zoo, candidates=[str(zoo / "full"), str(zoo / "other")], seed=3)
    assert [c.features_from for c in again.candidates] == ["generated", "generated"]
    assert again.to_dict() == result.to_dict()


def test_published_sample_features_are_used_instead_of_sampling(zoo, tmp_path, monkeypatch):
    import shutil

    candidate = tmp_path / "full"
    shutil.copytree(zoo / "full", candidate)
    write_sample_features(candidate, candidate / "features" / f"{EXTRACTOR}.safetensors", EXTRACTOR, num_gen=NUM_GEN,
                          progress=False, allow_random_weights=True)  # fmt: skip
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "fresh-cache"))

    def no_sampling(*args, **kwargs):
        raise AssertionError("the candidate was loaded and sampled despite its published features")

    with monkeypatch.context() as patched:
        patched.setattr("ganzoo.checkpoint.GAN.load", no_sampling)
        result = _rank(zoo, candidates=[str(candidate)])
    published = result.candidates[0]
    assert published.features_from == "published"
    # The published features are the candidate's own samples: the scores of sampling it here.
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "other-cache"))
    local = _rank(zoo, candidates=[str(zoo / "full")]).candidates[0]
    assert local.features_from == "generated"
    scores = ("fid", "kid", "precision", "recall", "density", "coverage")
    assert [getattr(published, k) for k in scores] == [getattr(local, k) for k in scores]
    assert published.num_samples == NUM_GEN
    # Another N does not match the published file: sampled locally instead.
    result = _rank(zoo, candidates=[str(candidate)], num_gen=NUM_GEN - 8)
    assert result.candidates[0].features_from == "generated"


def test_real_regime_uses_published_source_dataset_features(zoo, tmp_path):
    import shutil

    from ganzoo.metrics.cache import FeatureSet, write_feature_file
    from ganzoo.metrics.features import get_extractor

    candidate = tmp_path / "with-real"
    shutil.copytree(zoo / "full", candidate)
    extractor = get_extractor(EXTRACTOR, allow_random_weights=True)
    source_images = _full_gan().sample(seeds=range(500, 540), class_idx=0)
    features = FeatureSet(extractor(source_images), {"kind": "dataset", **extractor.cache_key()})
    write_feature_file(candidate / "features" / f"{EXTRACTOR}-real.safetensors", features)
    result = _rank(zoo, candidates=[str(candidate), str(zoo / "other")], regime="real")
    rows = {c.name.rsplit("/", 1)[-1]: c for c in result.candidates}
    assert rows["with-real"].features_from == "published-real" and rows["with-real"].fid is not None
    assert rows["other"].fid is None and "not scored" in rows["other"].notes[0]
    assert result.recommended.endswith("with-real")


def test_too_small_and_empty_targets(zoo, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(small / f"{i}.png")
    with pytest.raises(DatasetError, match=r"small: 3 images, .*needs at least 4"):
        rank(small, candidates=[str(zoo / "full")], num_gen=NUM_GEN, feature_extractor=EXTRACTOR,
             allow_random_weights=True, progress=False)  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="empty: 0 images"):
        rank(empty, candidates=[str(zoo / "full")], allow_random_weights=True, progress=False)
    with pytest.raises(GanzooError, match="unknown metric"):
        _rank(zoo, metric="is")


def test_cli_rank_and_metrics(zoo, tmp_path, capsys):
    code = main(["rank", "--target", str(zoo / "target"), "--candidates", f"{zoo / 'full'},{zoo / 'other'}",
                 "--num-gen", str(NUM_GEN), "--feature-extractor", EXTRACTOR, "--random-weights",
                 "--json", str(tmp_path / "rank.json")])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    # Random-weight features cannot judge: the table, the line below it and the JSON say so.
    assert "least far from the target, with low confidence" in out and "full" in out
    assert "low confidence: timm:resnet18@32 has random weights" in " ".join(out.split())
    assert "warning: timm:resnet18@32: random weights" in err
    record = json.loads((tmp_path / "rank.json").read_text())
    assert record["recommended"].endswith("full") and record["confidence"] == "low"
    assert record["caveats"][0].startswith("timm:resnet18@32 has random weights")

    code = main(["metrics", str(zoo / "full"), "--data", str(zoo / "target"), "--num-gen", str(NUM_GEN),
                 "--feature-extractor", EXTRACTOR, "--random-weights", "--json", str(tmp_path / "m.json")])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    values = json.loads((tmp_path / "m.json").read_text())
    assert {"fid", "kid", "precision", "recall", "density", "coverage"} <= set(values)
    assert values["num_real"] == 2 * TARGET_PER_CLASS

    code = main(["rank", "--target", str(tmp_path / "nowhere"), "--random-weights"])
    out, err = capsys.readouterr()
    assert code == 1 and err.strip().count("\n") == 0 and "nowhere: no such folder or zip" in err


def test_hub_candidate_with_published_features_needs_no_weights(zoo, tmp_path, monkeypatch):
    """A Hub id is fingerprinted from the repo's config.json; its published sample features are
    used; the weights are never pulled (a laptop ranks a zoo at the cost of the target only)."""
    import huggingface_hub

    published = tmp_path / "published.safetensors"
    write_sample_features(zoo / "full", published, EXTRACTOR, num_gen=NUM_GEN, progress=False, allow_random_weights=True)
    files = {"config.json": zoo / "full" / "config.json", f"features/{EXTRACTOR}.safetensors": published}
    asked = []

    def fake_download(repo_id, filename, **kwargs):
        asked.append((repo_id, filename))
        if filename not in files:
            raise huggingface_hub.errors.EntryNotFoundError(f"{filename} not in {repo_id}")
        return str(files[filename])

    def no_pull(*args, **kwargs):
        raise AssertionError("the checkpoint was pulled")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr("ganzoo.hub.pull_checkpoint", no_pull)
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "fresh-cache"))
    result = _rank(zoo, candidates=["someorg/full-gan"])
    assert result.candidates[0].name == "someorg/full-gan"
    assert result.candidates[0].features_from == "published"
    assert ("someorg/full-gan", "config.json") in asked


def test_a_broken_candidate_is_noted_and_the_others_ranked(zoo, tmp_path):
    result = _rank(zoo, candidates=[str(zoo / "full"), str(tmp_path / "gone")])
    assert result.recommended.endswith("full")
    broken = [c for c in result.candidates if c.name.endswith("gone")][0]
    assert broken.fid is None and broken.notes[0].startswith("not scored:")
    assert result.candidates[-1] is broken  # unscored rows sort last
    with pytest.raises(GanzooError, match="gone"):
        _rank(zoo, candidates=[str(tmp_path / "gone")])


def _gray_first_target(folder, colour=True):
    """``0-gray.png`` sorts first; then RGB images (or grayscale ones with ``colour=False``), one of
    them 48x48 among 32x32 ones."""
    folder.mkdir()
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(folder / "0-gray.png")
    for i in range(5):
        shape = ((48, 48) if i == 4 else (32, 32)) + ((3,) if colour else ())
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{i + 1}.png")
    return folder


def test_a_grayscale_first_file_does_not_decide_the_target_channels(tmp_path, monkeypatch):
    """Offline, the default candidates are the bundled (RGB) entries: a target whose first file is
    grayscale but whose others are colour is an RGB target, and its mixed set is noted."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    target = _gray_first_target(tmp_path / "mydata")
    options = dict(num_gen=8, feature_extractor="pixels@8", progress=False)
    result = rank(target, **options)
    from ganzoo.registry import get_entry, list_models

    bundled = {name for name in list_models() if get_entry(name).bundled}
    assert {c.name for c in result.candidates} == bundled and result.recommended in bundled
    assert f"{target}: mixed image sizes: 5 of 32x32, 1 of 48x48; 1 resized to 32x32 (lanczos)" in result.notes
    assert f"{target}: mixed channels: 1 grayscale and 5 colour images; the grayscale one is repeated to RGB" in result.notes
    assert result.target_resolution == 32

    # All grayscale, and no registry entry makes 1-channel images: the RGB entries are ranked, said so.
    gray = rank(_gray_first_target(tmp_path / "gray", colour=False), **options)
    assert {c.name for c in gray.candidates} == bundled
    assert any(note.startswith("the target is grayscale and no registry entry has 1-channel images") for note in gray.notes)


def test_a_feature_extractor_typo_is_its_own_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    target = _gray_first_target(tmp_path / "gray", colour=False)
    for args in (["rank", "--target", str(target)],
                 ["metrics", "ffhq-stylegan2-256", "--data", str(target)]):  # fmt: skip
        code = main([*args, "--feature-extractor", "incepton-fid"])
        err = capsys.readouterr().err
        assert code == 1 and err.strip().count("\n") == 0 and "Traceback" not in err, err
        assert "unknown feature extractor 'incepton-fid' (did you mean inception-fid?)" in err
        assert "inception-fid, vgg16-pr, timm:MODEL_NAME or pixels[@SIZE]" in err
        assert "no candidates" not in err
