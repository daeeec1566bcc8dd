"""Filter diversity and weight-space distance (ganzoo.analysis) and ``ganzoo analyze``."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from helpers import tiny_gan
from torch import nn

from ganzoo.analysis import distance, filter_report, filter_similarity, mean_pairwise_cosine
from ganzoo.checkpoint import GAN
from ganzoo.errors import GanzooError
from ganzoo.architectures.stylegan2.adafm import AdaFMGenerator
from ganzoo.architectures.stylegan2.networks import Generator


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


def test_filter_similarity_skips_non_conv_weights_and_single_filters():
    net = nn.Sequential(nn.Conv2d(2, 3, 1), nn.Linear(4, 4), nn.Conv2d(3, 1, 3))
    rows = filter_similarity(net)
    assert [r["name"] for r in rows] == ["0.weight"]  # Linear is 2-D; one output filter has no pairs


def test_adafm_layers_are_measured_with_their_modulated_kernel_and_distance_folds_them():
    gan = tiny_gan()
    adafm = GAN(AdaFMGenerator.from_generator(gan.G_ema, [16]), None, gan.D, config=gan.config)
    layer = adafm.G_ema.synthesis.b16.conv0
    with torch.no_grad():
        layer.adafm_gamma.uniform_(0.5, 1.5)
        layer.adafm_beta.normal_(0.0, 0.1)
    row = next(r for r in filter_similarity(adafm.G_ema) if r["name"] == "synthesis.b16.conv0.weight")
    assert row["mean_similarity"] == pytest.approx(_pairwise_loop(layer._buffers["weight"] * layer.adafm_gamma + layer.adafm_beta))
    folded_move = torch.linalg.vector_norm(layer.folded_weight().double() - gan.G_ema.synthesis.b16.conv0.weight.detach().double())
    n_g = sum(1 for _ in gan.G_ema.parameters())
    assert distance(gan, adafm)["G"] == pytest.approx(folded_move.item() / n_g, rel=1e-6)


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


# ----------------------------------------------------------------------------------------------
# CLI


def _run(capsys, *args):
    from ganzoo.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_filters_table_json_and_plot_match_the_function(tmp_path, capsys):
    a, b = tiny_gan().save(tmp_path / "a"), tiny_gan(seed=1).save(tmp_path / "b")
    code, out, err = _run(capsys, "analyze", "filters", a, b, "--json", tmp_path / "f.json", "--plot", tmp_path / "f.png")
    assert code == 0, err
    assert "synthesis.b8.conv0.weight" in out and "b16.fromrgb.weight" in out and "mean over layers" in out
    data = json.loads((tmp_path / "f.json").read_text())
    assert [m["source"] for m in data["models"]] == [str(a), str(b)]
    for model, path in zip(data["models"], (a, b)):
        expected = filter_report(str(path))
        assert model["G_mean"] == pytest.approx(expected["G_mean"]) and model["D_mean"] == pytest.approx(expected["D_mean"])
        assert model["G"] == expected["G"] and model["D"] == expected["D"]
        assert f"{expected['G_mean']:.4f}" in out
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_distance_json_matches_the_function(tmp_path, capsys):
    a, b = tiny_gan().save(tmp_path / "a"), tiny_gan(seed=1).save(tmp_path / "b")
    code, out, err = _run(capsys, "analyze", "distance", a, b, "--json", tmp_path / "d.json")
    assert code == 0, err
    data = json.loads((tmp_path / "d.json").read_text())
    expected = distance(str(a), str(b))
    assert {k: data[k] for k in expected} == pytest.approx(expected)
    assert f"{expected['mean']:.4f}" in out


@pytest.mark.parametrize("command", ["filters", "distance"])
def test_cli_bad_path_is_one_line_and_exit_1(tmp_path, capsys, command):
    tiny_gan().save(tmp_path / "a")
    args = [tmp_path / "nope"] if command == "filters" else [tmp_path / "a", tmp_path / "nope"]
    code, out, err = _run(capsys, "analyze", command, *args, "--json", tmp_path / "x.json")
    assert code == 1
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()


def test_cli_distance_of_different_architectures_is_one_line_and_exit_1(tmp_path, capsys):
    a, b = tiny_gan().save(tmp_path / "a"), tiny_gan(resolution=32).save(tmp_path / "b")
    code, out, err = _run(capsys, "analyze", "distance", a, b)
    assert code == 1 and "architectures differ" in err and len(err.strip().splitlines()) == 1
