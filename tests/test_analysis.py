"""Filter diversity and weight-space distance (ganzoo.analysis) and ``ganzoo analyze``."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from helpers import tiny_gan
from torch import nn

from ganzoo.analysis import distance, filter_report, filter_similarity, mean_pairwise_cosine
from ganzoo.checkpoint import GAN
from ganzoo.errors import GanzooError
from ganzoo.models.stylegan2 import Generator


def _pairwise_loop(weight: torch.Tensor) -> float:
    filters = weight.detach().double().flatten(1)
    sims = [
        torch.nn.functional.cosine_similarity(filters[i], filters[j], dim=0).item()
        for i, j in itertools.permutations(range(filters.shape[0]), 2)
    ]
    return sum(sims) / len(sims)


def test_filter_similarity_equals_an_explicit_loop_over_pairs_on_every_conv_of_g_and_d():
    gan = tiny_gan()
    for net in (gan.G_ema, gan.D):
        rows = filter_similarity(net)
        modules = dict(net.named_modules())
        for row in rows:
            weight = modules[row["name"].removesuffix(".weight")].weight
            assert row["shape"] == list(weight.shape)
            assert row["mean_similarity"] == pytest.approx(_pairwise_loop(weight), abs=1e-12)
    g_names = [r["name"] for r in filter_similarity(gan.G_ema)]
    d_names = [r["name"] for r in filter_similarity(gan.D)]
    assert g_names[:2] == ["synthesis.b4.conv1.weight", "synthesis.b4.torgb.weight"]
    assert "synthesis.b16.conv0.weight" in g_names and not any("mapping" in n for n in g_names)
    assert d_names[:4] == ["b16.fromrgb.weight", "b16.conv0.weight", "b16.conv1.weight", "b16.skip.weight"]


def test_orthogonal_filters_give_zero_and_identical_filters_give_one():
    eye = torch.eye(6).reshape(6, 2, 3, 1)
    assert mean_pairwise_cosine(eye) == pytest.approx(0.0, abs=1e-12)
    same = torch.randn(1, 4, 3, 3).repeat(5, 1, 1, 1) * torch.arange(1.0, 6.0).reshape(5, 1, 1, 1)
    assert mean_pairwise_cosine(same) == pytest.approx(1.0, abs=1e-12)
    opposite = torch.stack([torch.ones(2, 1, 1), -torch.ones(2, 1, 1)])
    assert mean_pairwise_cosine(opposite) == pytest.approx(-1.0)  # the signed mean, as the paper


def test_filter_similarity_measures_the_kernel_a_layer_uses_and_skips_non_conv_weights():
    net = nn.Sequential(nn.Conv2d(2, 3, 1), nn.Linear(4, 4), nn.Conv2d(3, 1, 3))
    rows = filter_similarity(net)
    assert [r["name"] for r in rows] == ["0.weight"]  # Linear is 2-D; one output filter has no pairs


def test_filter_report_uses_g_ema_and_averages_layers():
    gan = tiny_gan()
    report = filter_report(gan)
    assert report["generator"] == "G_ema"
    assert report["G"] == filter_similarity(gan.G_ema)
    assert report["G_mean"] == pytest.approx(sum(r["mean_similarity"] for r in report["G"]) / len(report["G"]))
    assert report["D_mean"] == pytest.approx(sum(r["mean_similarity"] for r in report["D"]) / len(report["D"]))
    no_d = filter_report(tiny_gan(with_d=False))
    assert no_d["D"] is None and no_d["D_mean"] is None


def test_distance_to_itself_is_zero_and_to_a_perturbed_copy_is_the_hand_computed_value(tmp_path):
    gan = tiny_gan()
    assert distance(gan, gan)["mean"] == 0.0
    other = tiny_gan()
    with torch.no_grad():
        other.G_ema.synthesis.b8.conv0.weight.add_(0.5)  # one G layer moves by 0.5 * sqrt(numel)
        other.D.b16.fromrgb.bias[0] += 3.0  # one D layer moves by 3
        other.G_ema.mapping.w_avg.add_(100.0)  # a buffer: not a layer
    n_g = sum(1 for _ in gan.G_ema.parameters())
    n_d = sum(1 for _ in gan.D.parameters())
    g_move = 0.5 * math.sqrt(gan.G_ema.synthesis.b8.conv0.weight.numel())
    result = distance(gan, other)
    assert result["G_layers"] == n_g and result["D_layers"] == n_d and result["layers"] == n_g + n_d
    assert result["G"] == pytest.approx(g_move / n_g, rel=1e-6)
    assert result["D"] == pytest.approx(3.0 / n_d, rel=1e-6)
    assert result["mean"] == pytest.approx((g_move + 3.0) / (n_g + n_d), rel=1e-6)
    # Anything ganzoo.load accepts: a checkpoint directory here.
    path = other.save(tmp_path / "other")
    assert distance(gan, str(path))["mean"] == pytest.approx(result["mean"], rel=1e-6)


def test_distance_refuses_different_architectures_naming_the_mismatch():
    small = tiny_gan()
    wide = tiny_gan()
    kwargs = dict(small.G_ema.init_kwargs)
    kwargs["synthesis_kwargs"] = dict(channel_base=256, channel_max=32)
    wide = GAN(Generator(**kwargs), None, small.D, config=small.config)
    with pytest.raises(GanzooError, match=r"generator \(G_ema\) architectures differ.*different shapes: synthesis"):
        distance(small, wide)
    bigger = tiny_gan(resolution=32)
    with pytest.raises(GanzooError, match=r"only in B: synthesis.b32"):
        distance(small, bigger)


def test_distance_without_d_reports_generator_only():
    result = distance(tiny_gan(with_d=False), tiny_gan(seed=1))
    assert result["D"] is None and result["D_layers"] == 0 and result["mean"] == result["G"]
