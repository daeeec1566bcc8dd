"""The StyleGAN3 networks: exactness against an official training snapshot (config T), the
filter design, and configs T and R building, training (forward/backward) and round-tripping."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ganzoo.architectures.stylegan3 import Generator, config_kwargs, design_lowpass_filter, upfirdn2d
from ganzoo.readers.safe_pickle import PersistentObject, load_pickle, plain
from ganzoo.architectures.stylegan2.ada_pickle import module_state_dict
from ganzoo.architectures.stylegan2.networks import Discriminator
from helpers import assert_same_images

pytestmark = pytest.mark.usefixtures("one_thread")

NAME = "sg3t32"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def fixture_folder(shared_fixtures):
    return shared_fixtures / "stylegan3" / NAME


@pytest.fixture(scope="module")
def snapshot(fixture_folder):
    return load_pickle(fixture_folder / f"{NAME}-snapshot.pkl")


def _kwargs(obj: PersistentObject) -> dict:
    return plain(obj.state["_init_kwargs"])


def _value(item) -> np.ndarray:
    """A pickled attribute (number, flag, list or numpy array) as a float array."""
    return np.asarray(item if isinstance(item, np.ndarray) else plain(item), dtype=float)


def _loaded(obj: PersistentObject, cls) -> torch.nn.Module:
    net = cls(**_kwargs(obj)).eval()
    net.load_state_dict(module_state_dict(obj, where=NAME), strict=True)  # names and shapes as is
    return net


def test_reproduces_official_snapshot(fixture_folder, snapshot, device):
    """CPU float32 by default; ``GANZOO_TEST_DEVICE=cuda`` runs it on a GPU (TF32 off)."""
    config = json.loads((fixture_folder / f"{NAME}-config.json").read_text())
    ref = dict(np.load(fixture_folder / f"{NAME}-reference.npz"))
    G = _loaded(snapshot["G_ema"], Generator).to(device)
    G_raw = _loaded(snapshot["G"], Generator).to(device)
    D = _loaded(snapshot["D"], Discriminator).to(device)
    assert sum(p.numel() for p in G.parameters()) == config["params"]["G"]
    assert sum(p.numel() for p in D.parameters()) == config["params"]["D"]
    assert G.mapping.embed is None and G.num_ws == 16

    z, c = (torch.from_numpy(ref[key]).to(device) for key in ("z", "c"))
    fp32 = dict(noise_mode="const", force_fp32=True)
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.no_grad():
            out = {"ws": G.mapping(z, c, truncation_psi=1), "ws_trunc07": G.mapping(z, c, truncation_psi=0.7)}
            out["img"] = G.synthesis(out["ws"], **fp32)
            out["img_trunc07"] = G(z, c, truncation_psi=0.7, **fp32)
            out["img_G"] = G_raw(z, c, **fp32)
            out["d_logits_input"] = D(torch.from_numpy(ref["x_input"]).to(device), c, force_fp32=True)
            out["d_logits_img"] = D(torch.from_numpy(ref["img"]).to(device), c, force_fp32=True)
            angle = 0.3
            moved = torch.tensor(
                [[math.cos(angle), math.sin(angle), 0.1], [-math.sin(angle), math.cos(angle), -0.05], [0, 0, 1]],
                dtype=torch.float64,
            )
            G.synthesis.input.transform.copy_(torch.linalg.inv(moved).float())
            out["img_transformed"] = G.synthesis(out["ws"], **fp32)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    errors = {key: float(np.abs(value.float().cpu().numpy() - ref[key]).max()) for key, value in out.items()}
    assert all(error <= TOLERANCE for error in errors.values()), errors
    assert not np.allclose(ref["img_transformed"], ref["img"], atol=1e-2)  # the transform matters


# Per-layer attributes of the pickled modules that fix what each layer computes.
_LAYER_ATTRIBUTES = (
    "is_torgb", "is_critically_sampled", "use_fp16", "in_channels", "out_channels", "in_size", "out_size",
    "in_sampling_rate", "out_sampling_rate", "tmp_sampling_rate", "in_cutoff", "out_cutoff", "in_half_width",
    "out_half_width", "conv_kernel", "conv_clamp", "magnitude_ema_beta", "up_factor", "up_taps", "down_factor",
    "down_taps", "down_radial", "padding",
)  # fmt: skip


def test_fresh_network_designs_the_snapshot_layers(snapshot):
    """Built from the snapshot's kwargs alone, the network plans the same layers (names, rates,
    cutoffs, padding...) and designs the same filters as the stored buffers."""
    pickled = snapshot["G_ema"]
    G = Generator(**_kwargs(pickled))
    stored = module_state_dict(pickled, where=NAME)
    fresh = G.state_dict()
    assert list(fresh) == list(stored)
    assert all(fresh[key].shape == stored[key].shape for key in stored)
    filters = [key for key in stored if key.endswith(("up_filter", "down_filter"))]
    assert len(filters) == 28
    for key in filters:
        torch.testing.assert_close(fresh[key], stored[key], rtol=0, atol=1e-6, msg=key)

    synthesis = pickled.state["_modules"]["synthesis"].state
    assert G.synthesis.layer_names == list(synthesis["layer_names"])
    for attr in ("num_ws", "num_layers", "num_critical", "margin_size", "output_scale", "num_fp16_res"):
        assert getattr(G.synthesis, attr) == _value(synthesis[attr]), attr
    for name in G.synthesis.layer_names:
        layer, expected = getattr(G.synthesis, name), synthesis["_modules"][name].state
        for attr in _LAYER_ATTRIBUTES:
            mine = np.asarray(getattr(layer, attr), dtype=float)
            np.testing.assert_allclose(mine, _value(expected[attr]), rtol=1e-12, err_msg=f"{name}.{attr}")
    source = pickled.state["_modules"]["synthesis"].state["_modules"]["input"].state
    for attr in ("channels", "size", "sampling_rate", "bandwidth"):
        np.testing.assert_allclose(np.asarray(getattr(G.synthesis.input, attr), dtype=float), _value(source[attr]))


def test_filter_design_matches_scipy():
    """Kaiser-windowed sinc against scipy's firwin; the radial (jinc) filter against a direct
    evaluation with scipy's Bessel function; both have unit DC gain and a low stopband."""
    from scipy import signal, special

    cases = [(12, 2.0, 12.0, 32), (24, 4.0, 8.0, 64), (12, 16.0, 7.4, 64), (18, 5.0, 3.0, 48)]
    for numtaps, cutoff, width, fs in cases:
        mine = design_lowpass_filter(numtaps, cutoff, width, fs).double().numpy()
        np.testing.assert_allclose(mine, signal.firwin(numtaps, cutoff, width=width, fs=fs), atol=1e-7)
    assert design_lowpass_filter(1, 2.0, 4.0, 32) is None

    numtaps, cutoff, width, fs = 12, 4.0, 8.0, 32
    radial = design_lowpass_filter(numtaps, cutoff, width, fs, radial=True).double().numpy()
    assert radial.shape == (numtaps, numtaps)
    coords = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    radius = np.hypot(coords[None, :], coords[:, None])
    jinc = special.j1(2 * np.pi * cutoff * radius) / (np.pi * radius)
    window = signal.windows.kaiser(numtaps, signal.kaiser_beta(signal.kaiser_atten(numtaps, width / (fs / 2))))
    expected = jinc * np.outer(window, window)
    np.testing.assert_allclose(radial, expected / expected.sum(), atol=1e-7)
    np.testing.assert_allclose(radial, radial.T, atol=1e-12)
    response = np.abs(np.fft.fft2(radial, s=(256, 256)))
    freqs = np.hypot(*np.meshgrid(np.fft.fftfreq(256, 1 / fs), np.fft.fftfreq(256, 1 / fs)))
    assert abs(response[0, 0] - 1) < 1e-6
    assert response[freqs >= cutoff + width / 2 + 1].max() < 0.05


def test_upfirdn2d_matches_direct_definition():
    """Upsample (zero insertion), pad/crop, convolve, downsample: against a plain loop."""
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    f = torch.tensor([0.1, 0.5, 0.3, 0.1], dtype=torch.float64)
    up, down, padding = 2, 3, [3, -1, 2, 1]
    out = upfirdn2d(x, f, up=up, down=down, padding=padding, gain=up**2)
    big = torch.zeros(1, 2, 5 * up, 6 * up, dtype=torch.float64)
    big[:, :, ::up, ::up] = x
    big = torch.nn.functional.pad(big, [3, 0, 2, 1])[:, :, :, :-1]
    kernel = torch.outer(f, f).flip([0, 1]) * up**2
    rows, cols = big.shape[2] - 3, big.shape[3] - 3
    direct = torch.empty(1, 2, rows, cols, dtype=torch.float64)
    for i in range(rows):
        for j in range(cols):
            direct[:, :, i, j] = (big[:, :, i : i + 4, j : j + 4] * kernel).sum(dim=(2, 3))
    torch.testing.assert_close(out, direct[:, :, ::down, ::down])
    radial = upfirdn2d(x, torch.outer(f, f), up=up, down=down, padding=padding, gain=up**2)
    torch.testing.assert_close(radial, out)


def _small(config: str, seed: int, c_dim: int = 0) -> Generator:
    torch.manual_seed(seed)
    kwargs = config_kwargs(config)
    scale = kwargs["channel_base"] // 32768  # R doubles T's channels
    kwargs.update(channel_base=256 * scale, channel_max=8 * scale, num_layers=6, num_critical=2, margin_size=4)
    return Generator(8, c_dim, 8, 16, 3, mapping_kwargs=dict(num_layers=2), **kwargs)


@pytest.mark.parametrize("config", ["T", "R"])
def test_configs_build_train_and_round_trip(config):
    G = _small(config, seed=1, c_dim=2)
    layers = [getattr(G.synthesis, name) for name in G.synthesis.layer_names]
    assert G.num_ws == 8 and len(layers) == 7 and G.mapping.embed is not None
    if config == "R":
        assert all(layer.conv_kernel == 1 for layer in layers)
        assert any(layer.down_filter is not None and layer.down_filter.ndim == 2 for layer in layers)
        critical = [layer for layer in layers if layer.is_critically_sampled]
        assert all(layer.down_filter is None or layer.down_filter.ndim == 1 for layer in critical)
        assert layers[0].out_channels == 2 * _small("T", seed=1).synthesis.input.channels
    else:
        assert all(layer.conv_kernel == 3 for layer in layers[:-1]) and layers[-1].conv_kernel == 1
        assert all(layer.down_filter is None or layer.down_filter.ndim == 1 for layer in layers)

    z, c = torch.randn(2, 8), torch.eye(2)
    G.train()
    img = G(z, c, update_emas=True)
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()
    assert all(float(layer.magnitude_ema) != 1 for layer in layers)  # the EMA moved
    img.square().mean().backward()
    for name, param in G.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert G.synthesis.input.weight.grad.abs().sum() > 0 and G.mapping.fc0.weight.grad.abs().sum() > 0

    G.eval()
    copy = _small(config, seed=2, c_dim=2).eval()
    copy.load_state_dict(G.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(copy(z, c, truncation_psi=0.5), G(z, c, truncation_psi=0.5))
        ws = G.mapping(z, c)
        assert torch.equal(copy.synthesis(ws, noise_mode="const", force_fp32=True), G.synthesis(ws, noise_mode="const"))
        # The truncation cutoff leaves the later ws alone.
        cut = G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=3)
        assert torch.equal(cut[:, 3:], ws[:, 3:]) and not torch.equal(cut[:, :3], ws[:, :3])


def test_input_transform_is_applied():
    """Identity leaves the image alone; a translation of the input changes it."""
    G = _small("T", seed=3).eval()
    ws = G.mapping(torch.randn(1, 8), None)
    with torch.no_grad():
        base = G.synthesis(ws)
        G.synthesis.input.transform.copy_(torch.eye(3))
        assert torch.equal(G.synthesis(ws), base)
        G.synthesis.input.transform[0, 2] = 0.25
        assert not torch.allclose(G.synthesis(ws), base, atol=1e-3)


def test_snapshot_converts_to_a_stylegan3_checkpoint_that_reproduces_the_reference(shared_fixtures, tmp_path, capsys):
    """The plug-in end to end: `ganzoo convert` (restricted unpickler) -> checkpoint directory
    (format 2, architecture stylegan3) -> GAN.load -> the reference outputs; sampling works."""
    import json

    import ganzoo
    from ganzoo.cli import main

    folder = shared_fixtures / "stylegan3" / "sg3t32"
    assert main(["convert", str(folder / "sg3t32-snapshot.pkl"), str(tmp_path / "sg3")]) == 0
    assert "stylegan3, 32px, 3 ch, unconditional" in capsys.readouterr().out
    config = json.loads((tmp_path / "sg3" / "config.json").read_text())
    assert config["architecture"] == "stylegan3" and config["format_version"] == 2
    assert config["metadata"]["resolution"] == 32 and config["metadata"]["latent_dim"] == 16
    gan = ganzoo.load(tmp_path / "sg3")
    ref = np.load(folder / "sg3t32-reference.npz")
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    with torch.no_grad():
        img = gan.G_ema.synthesis(gan.G_ema.mapping(z, c), force_fp32=True)
        img_trunc = gan.G_ema(z, c, truncation_psi=0.7, force_fp32=True)
        img_G = gan.G(z, c, force_fp32=True)
        logits = gan.D(torch.from_numpy(ref["x_input"]), c)
    for ours, key in ((img, "img"), (img_trunc, "img_trunc07"), (img_G, "img_G"), (logits, "d_logits_input")):
        assert (ours - torch.from_numpy(ref[key])).abs().max().item() <= 1e-4, key
    images = gan.sample(seeds=[0, 1, 2])
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    # sample() gives the seed's latent through the same networks (uint8 of G(z_seed)).
    z1 = torch.from_numpy(np.random.RandomState(1).randn(1, 16)).float()
    with torch.no_grad():
        by_hand = (gan.G_ema(z1, torch.zeros([1, 0])).permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    assert_same_images(images[1:2], by_hand.numpy())  # a batch of 3 vs 1: the same up to rounding


def test_a_family_without_recipes_or_merge_is_refused_in_one_line(shared_fixtures, tmp_path, monkeypatch):
    """What a family does not support (no recipes, not mergeable: a plug-in registered without
    its training hooks) is refused in one line before anything is written."""
    import ganzoo
    import ganzoo.architectures as architectures
    from ganzoo.architectures.stylegan3 import StyleGAN3
    from ganzoo.errors import GanzooError
    from helpers import random_images

    class Untrainable(StyleGAN3):
        name = "stylegan3"  # the same networks, registered without recipes or merge
        recipes = ()
        mergeable = False

    gan = _converted(shared_fixtures, tmp_path / "sg3")
    monkeypatch.setattr(architectures, "_REGISTRY", dict(architectures._REGISTRY))
    architectures.register_architecture(Untrainable(), replace=True)
    random_images(tmp_path / "data", 4, size=32)
    with pytest.raises(GanzooError, match="^finetune: stylegan3 networks cannot be trained by this version"):
        ganzoo.finetune(tmp_path / "sg3", tmp_path / "data", tmp_path / "run", kimg=0.01)
    with pytest.raises(GanzooError, match="^merge: stylegan3 networks cannot be merged by this version"):
        ganzoo.merge([tmp_path / "sg3", "discs"], tmp_path / "duo")
    assert not (tmp_path / "run").exists() and not (tmp_path / "duo").exists()
    from ganzoo.ranking import _recipe_hint

    assert _recipe_hint("x", 12, "data", "stylegan3").startswith("stylegan3 networks cannot be finetuned")
    assert gan.architecture.recipes  # the real plug-in trains


def _converted(shared_fixtures, out):
    from ganzoo.cli import main

    assert main(["convert", str(shared_fixtures / "stylegan3" / "sg3t32" / "sg3t32-snapshot.pkl"), str(out)]) == 0
    import ganzoo

    return ganzoo.load(out)


def test_rank_scores_a_stylegan3_and_hints_its_recipes(shared_fixtures, tmp_path):
    from ganzoo.cli import main
    from ganzoo.ranking import _recipe_hint, rank
    from helpers import random_images

    assert main(["convert", str(shared_fixtures / "stylegan3" / "sg3t32" / "sg3t32-snapshot.pkl"), str(tmp_path / "sg3")]) == 0
    random_images(tmp_path / "data", 12, size=32)
    result = rank(tmp_path / "data", candidates=[str(tmp_path / "sg3")], feature_extractor="pixels", num_gen=16,
                  progress=False)  # fmt: skip
    row = result.candidates[0]
    assert row.fid is not None and row.num_samples == 16 and result.recommended == str(tmp_path / "sg3")
    assert "ganzoo finetune" in result.recipe_hint and "--recipe" in result.recipe_hint
    assert "--recipe adafm" in _recipe_hint("discs", 12, "data", "stylegan2")
