"""Metrics on feature arrays against the reference values, and the feature extractors.

The reference values (``../shared/fixtures/metrics/mixture8-expected.json``) come from the
StyleGAN2-ADA formulas; independent cross-checks use torch-fidelity's precision/recall and a
brute-force transcription of the density/coverage definitions on full distance matrices.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import warnings

import numpy as np
import pytest
import torch

from ganzoo import metrics
from ganzoo.errors import ChecksumMismatchError, DatasetError, DownloadError, GanzooError
from ganzoo.metrics import features as features_module
from ganzoo.metrics.features import RandomWeightsWarning, WeightsFile, fetch_weights, get_extractor
from ganzoo.metrics.manifold import knn_radii, manifold_metrics
from ganzoo.metrics.scores import feature_stats, fid_from_stats

RTOL = 1e-6


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks, shared cores


@pytest.fixture(scope="module")
def mixture(shared_fixtures):
    data = np.load(shared_fixtures / "metrics" / "mixture8-features.npz")
    expected = json.loads((shared_fixtures / "metrics" / "mixture8-expected.json").read_text())
    return data["real"], data["gen"], expected


def _rel(actual: float, expected: float) -> float:
    return abs(actual - expected) / max(abs(expected), 1e-300)


# ------------------------------------------------------------------------------------------------
# Reference values


def test_fid_matches_reference(mixture):
    real, gen, expected = mixture
    assert _rel(metrics.fid(real, gen), expected["fid"]) < RTOL
    assert _rel(metrics.fid(torch.from_numpy(real), torch.from_numpy(gen)), expected["fid"]) < RTOL


def test_kid_matches_reference_with_one_subset_holding_every_sample(mixture):
    real, gen, expected = mixture
    assert _rel(metrics.kid(real, gen, num_subsets=1, subset_size=256), expected["kid"]) < RTOL
    # With subsets of every sample, any number of subsets and any seed gives the same value.
    assert _rel(metrics.kid(real, gen, num_subsets=5, subset_size=1000, seed=7), expected["kid"]) < RTOL


def test_kid_whole_kernel_and_per_subset_paths_agree(mixture, monkeypatch):
    real, gen, _ = mixture
    with_kernels = metrics.kid(real, gen, num_subsets=20, subset_size=100, seed=1)
    monkeypatch.setattr("ganzoo.metrics.scores._KID_PRECOMPUTE_ENTRIES", 0)
    per_subset = metrics.kid(real, gen, num_subsets=20, subset_size=100, seed=1)
    assert _rel(with_kernels, per_subset) < 1e-10
    assert metrics.kid(real, gen, num_subsets=20, subset_size=100, seed=2) != per_subset


@pytest.mark.parametrize("k", [3, 5])
def test_precision_recall_match_reference(mixture, k):
    real, gen, expected = mixture
    result = metrics.precision_recall(real, gen, k=k)
    assert set(result) == {"precision", "recall"}
    for name in ("precision", "recall"):
        assert _rel(result[name], expected[f"pr_k{k}"][name]) < RTOL
    # Batching changes only the order of work, never the result.
    assert metrics.precision_recall(real, gen, k=k, batch_size=7) == result
    # float32 inputs run in float32: the same decisions on these features. Measured margin: the
    # nearest probe distance is 2.6e-5 (relative) from a k-NN radius, float32 distances are off by
    # at most 2.6e-6 relative (any CPU's float32 rounding is of that order): 10x.
    assert metrics.precision_recall(real.astype(np.float32), gen.astype(np.float32), k=k) == result


# ------------------------------------------------------------------------------------------------
# Independent cross-checks


def test_precision_recall_agree_with_torch_fidelity():
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 32)).astype(np.float32)
    gen = (rng.normal(size=(280, 32)) * 1.2 + 0.3).astype(np.float32)
    for k in (3, 5):
        # torch-fidelity's convention: features_1 generated, features_2 real.
        precision, recall = calculate_precision_recall_full(torch.from_numpy(gen), torch.from_numpy(real), neighborhood=k)
        ours = metrics.precision_recall(real, gen, k=k)
        assert ours["precision"] == pytest.approx(precision, abs=1e-6)  # theirs is a float32 mean
        assert ours["recall"] == pytest.approx(recall, abs=1e-6)


def _brute_density_coverage(real: np.ndarray, gen: np.ndarray, k: int) -> dict:
    # Naeem et al. (2020), the authors' definitions, on full distance matrices.
    real_t, gen_t = torch.from_numpy(real), torch.from_numpy(gen)
    real_real = torch.cdist(real_t, real_t)
    radii = real_real.sort(dim=1).values[:, k]  # index 0 is the point itself
    real_gen = torch.cdist(real_t, gen_t)
    inside = real_gen < radii[:, None]
    return {"density": float(inside.sum(dim=0).double().mean() / k),
            "coverage": float((real_gen.min(dim=1).values < radii).double().mean())}  # fmt: skip


def test_density_coverage_match_brute_force(mixture):
    real, gen, _ = mixture
    for k in (3, 5):
        expected = _brute_density_coverage(real, gen, k)
        result = metrics.density_coverage(real, gen, k=k)
        assert set(result) == {"density", "coverage"}
        for name in expected:
            assert result[name] == pytest.approx(expected[name], rel=RTOL)
    fused = manifold_metrics(real, gen, k_pr=3, k_dc=5, batch_size=13)
    assert fused == {**metrics.precision_recall(real, gen, k=3), **metrics.density_coverage(real, gen, k=5)}


def test_identical_sets_are_perfect():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(120, 16))
    assert abs(metrics.fid(features, features)) < 1e-8
    assert metrics.precision_recall(features, features) == {"precision": 1.0, "recall": 1.0}
    assert metrics.density_coverage(features, features)["coverage"] == 1.0


def test_fid_is_stable_for_singular_covariances_and_both_trace_routes_agree():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(40, 256))  # fewer samples than dimensions: singular covariances
    gen = rng.normal(size=(30, 256)) + 0.2
    value = metrics.fid(real, gen)  # the sample-space route (N < D)
    assert np.isfinite(value) and value > 0
    via_stats = fid_from_stats(feature_stats(real), feature_stats(gen))  # two eigendecompositions
    assert value == pytest.approx(via_stats, rel=1e-6)
    assert abs(metrics.fid(real, real)) < 1e-6


def test_cached_radii_give_the_same_result(mixture):
    real, gen, _ = mixture
    radii = knn_radii(real, ks=(3, 5))
    assert manifold_metrics(real, gen, real_radii=radii) == manifold_metrics(real, gen)
    np.testing.assert_allclose(radii.radius(3), np.sort(np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1)), axis=1)[:, 3])


def test_bad_inputs_are_one_line_errors():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(10, 8))
    with pytest.raises(DatasetError, match="3 generated samples, it needs at least 4"):
        metrics.precision_recall(real, real[:3], k=3)
    with pytest.raises(DatasetError, match="needs at least 6"):
        metrics.density_coverage(real[:5], real, k=5)
    with pytest.raises(GanzooError, match="8-d, generated ones 4-d"):
        metrics.fid(real, real[:, :4])
    with pytest.raises(GanzooError, match="NaN or inf"):
        metrics.kid(real, np.full((10, 8), np.nan))
    with pytest.raises(GanzooError, match=r"expected a feature array \[N, D\]"):
        metrics.fid(real[0], real)


# ------------------------------------------------------------------------------------------------
# Feature extractors


@pytest.fixture()
def _no_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _images(n=2, size=24, channels=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)


def test_inception_with_random_weights_warns_and_is_deterministic(_no_hub):
    with pytest.warns(RandomWeightsWarning, match="inception-fid: random weights"):
        extractor = get_extractor("inception-fid", allow_random_weights=True)
    assert extractor.dim == 2048 and extractor.input_size == 299 and extractor.weights == "random:seed0"
    features = extractor(_images())
    assert features.shape == (2, 2048) and features.dtype == np.float32
    assert features.std() > 0
    with pytest.warns(RandomWeightsWarning):
        np.testing.assert_array_equal(get_extractor("inception-fid", allow_random_weights=True)(_images()), features)


def test_vgg16_with_random_weights():
    with pytest.warns(RandomWeightsWarning):
        extractor = get_extractor("vgg16-pr", allow_random_weights=True)
    features = extractor(_images(n=2, size=16))
    assert features.shape == (2, 4096) and features.dtype == np.float32 and extractor.input_size == 224
    assert extractor.dim == 4096 and extractor.weights == "random:seed0"
    # fc2 after its ReLU (torch-fidelity's fc2_relu): non-negative, not all zero, image-dependent.
    assert features.min() >= 0 and 0.1 < (features > 0).mean() < 0.9
    assert not np.allclose(features[0], features[1])


def test_timm_extractor_channels_and_errors():
    with pytest.warns(RandomWeightsWarning):
        extractor = get_extractor("timm:resnet18@32", allow_random_weights=True)
    gray = _images(channels=1)
    np.testing.assert_allclose(extractor(gray), extractor(np.repeat(gray, 3, axis=-1)), rtol=1e-6)
    rgba = _images(channels=4)
    np.testing.assert_allclose(extractor(rgba), extractor(rgba[..., :3]), rtol=1e-6)
    with pytest.raises(GanzooError, match="expected uint8 images"):
        extractor(gray.astype(np.float32))
    with pytest.raises(GanzooError, match="unknown timm model 'no_such_net'"):
        get_extractor("timm:no_such_net", allow_random_weights=True)
    with pytest.raises(GanzooError, match="unknown feature extractor 'clip'"):
        get_extractor("clip")


def test_pretrained_is_the_default_and_offline_fails_with_a_clear_error(_no_hub):
    features_module._MEMO.clear()
    with pytest.raises(DownloadError, match="weights-inception-2015-12-05-6726825d.pth: .*HF_HUB_OFFLINE=1"):
        get_extractor("inception-fid")


class _OneFileServer:
    """Serves bytes at /FILE on loopback, counting requests."""

    def __init__(self, name: str, payload: bytes):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                server.requests += 1
                if self.path != f"/{name}":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_HEAD(self):  # noqa: N802 - the Hub client's first request: answered "no such repo"
                server.requests += 1
                self.send_error(404)

            def log_message(self, *args):
                pass

        self.requests = 0
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_weights_come_from_upstream_verified_cached_and_load_safely(tmp_path, monkeypatch):
    """The real loading path of inception-fid, on a state dict made here and served on loopback."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        reference = get_extractor("inception-fid", allow_random_weights=True).network
    path = tmp_path / "weights.pth"
    torch.save({k: v.clone() for k, v in reference.state_dict().items()}, path)
    payload = path.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    server = _OneFileServer("weights-inception-test.pth", payload)
    # The same loopback server plays the Hub, which has no such repo: the upstream URL is next.
    monkeypatch.setenv("HF_ENDPOINT", server.url.rsplit("/", 1)[0])
    try:
        spec = WeightsFile("weights-inception-test.pth", digest, server.url)
        monkeypatch.setattr(features_module, "INCEPTION_WEIGHTS", spec)
        features_module._MEMO.clear()
        extractor = get_extractor("inception-fid")  # pretrained path: Hub fails, upstream serves
        assert extractor.weights == f"sha256:{digest}"
        for name, tensor in reference.state_dict().items():
            torch.testing.assert_close(extractor.network.state_dict()[name], tensor)
        requests = server.requests
        assert fetch_weights(spec) == fetch_weights(spec)  # second and third: from ganzoo's cache
        assert server.requests == requests

        bad = WeightsFile("weights-other.pth", "0" * 64, server.url.replace("weights-inception-test.pth", "weights-other.pth"))
        with pytest.raises(DownloadError, match="upstream: .*HTTP 404"):
            fetch_weights(bad)
        wrong = WeightsFile("weights-inception-test.pth", "f" * 64, server.url)
        (features_module._extractor_cache() / spec.filename).unlink()
        with pytest.raises(ChecksumMismatchError):
            fetch_weights(wrong)
        assert not (features_module._extractor_cache() / spec.filename).exists()
    finally:
        server.close()
        features_module._MEMO.clear()


class _Payload:
    """Any non-tensor object: ``torch.load(weights_only=True)`` must refuse to rebuild it."""


def test_weight_files_that_need_code_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"x": _Payload()}, path)
    with pytest.raises(GanzooError, match="cannot load weights safely"):
        features_module._load_state_dict(path)


def test_pixels_extractor_is_the_resized_image_and_needs_no_weights():
    from ganzoo.errors import GanzooError
    from ganzoo.metrics.features import get_extractor

    images = np.random.RandomState(0).randint(0, 256, [3, 32, 32, 3]).astype(np.uint8)
    same = get_extractor("pixels@32")
    assert same.weights == "none" and not same.random_weights and same.dim == 3 * 32 * 32
    np.testing.assert_allclose(same(images), images.transpose(0, 3, 1, 2).reshape(3, -1) / 255, atol=1e-6)
    small = get_extractor("pixels")  # 16x16: a 2x2 box average of a 32x32 image
    expected = images.reshape(3, 16, 2, 16, 2, 3).mean(axis=(2, 4)).transpose(0, 3, 1, 2).reshape(3, -1) / 255
    np.testing.assert_allclose(small(images), expected, atol=1e-5)
    with pytest.raises(GanzooError, match="SIZE"):
        get_extractor("pixels@0")


def test_extractor_names_are_checked_without_building_anything(monkeypatch):
    from ganzoo.metrics.features import check_extractor_name

    def no_building(*args, **kwargs):
        raise AssertionError("an extractor was built to check its name")

    monkeypatch.setattr(features_module, "_inception", no_building)
    for name in ("inception-fid", "vgg16-pr", "pixels", "pixels@32", "timm:resnet18", "timm:resnet18@32"):
        check_extractor_name(name)
    with pytest.raises(GanzooError, match=r"unknown feature extractor 'inceptionfid' \(did you mean inception-fid\?\); "
                                          r"use inception-fid, vgg16-pr, timm:MODEL_NAME or pixels\[@SIZE\]"):  # fmt: skip
        check_extractor_name("inceptionfid")
    with pytest.raises(GanzooError, match="unknown feature extractor 'clip'; use"):
        check_extractor_name("clip")
    with pytest.raises(GanzooError, match="SIZE must be an integer"):
        check_extractor_name("pixels@0")
    with pytest.raises(GanzooError, match="unknown timm model 'no_such_net'"):
        check_extractor_name("timm:no_such_net")


def test_evaluate_records_what_was_done_to_a_mixed_dataset(tmp_path):
    from PIL import Image

    from ganzoo.metrics.evaluate import evaluate
    from helpers import random_images, tiny_gan

    folder = tmp_path / "mydata"
    random_images(folder, 5, size=16, seed=0, name="b{i}.png")
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(folder / "a-gray.png")  # sorts first
    Image.fromarray(np.full((24, 32, 3), 99, np.uint8)).save(folder / "c-wide.png")
    result = evaluate(tiny_gan(seed=1), folder, metrics=["kid"], num_gen=8, feature_extractor="pixels@8",
                      kid_subset_size=4, progress=False)  # fmt: skip
    assert result["data"] == {"path": str(folder), "resolution": 16, "resampled": True, "resampled_from": {"32x24": 1},
                              "resize_filter": "lanczos", "converted": {"grayscale": 1}}  # fmt: skip
    assert result["notes"][:2] == [
        f"{folder}: mixed image sizes: 6 of 16x16, 1 of 32x24; 1 center-cropped and resized to 16x16 (lanczos)",
        f"{folder}: mixed channels: 1 grayscale and 6 colour images; the grayscale one is repeated to RGB",
    ]
