"""Tests for the plain state-dict reader and kwarg inference (ganzoo.readers.state_dict)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

import ganzoo
from ganzoo.architectures.stylegan2.state_dict import (
    PAPER_DEFAULTS,
    fit_channel_base_max,
    infer_discriminator_kwargs,
    infer_generator_kwargs,
)
from ganzoo.readers.state_dict import FORMAT, read_state_dict_file
from ganzoo.errors import ConversionError
from ganzoo.architectures.stylegan2.ada_pickle import read_stylegan2_ada_pickle
from ganzoo.architectures.stylegan2.networks import build_network

# torch.save's two serializations: zip (torch >= 1.6) and the legacy stream of older releases.
SERIALIZATIONS = {"zip": True, "legacy": False}


@pytest.fixture(params=sorted(SERIALIZATIONS))
def save(request):
    """``save(obj, path)``: torch.save in one of the two serializations (tests run with both)."""

    def save(obj, path):
        torch.save(obj, path, _use_new_zipfile_serialization=SERIALIZATIONS[request.param])
        return path

    return save


def generator_kwargs(
    z_dim, w_dim, res, channels, architecture, c_dim=0, img_channels=3, num_layers=2,
    layer_features=None, embed_features=None, use_noise=True, resample_filter=(1, 3, 3, 1),
):  # fmt: skip
    """Generator kwargs in exactly the form inference produces, with the paper defaults."""
    mapping = {"num_layers": num_layers}
    if layer_features is not None:
        mapping["layer_features"] = layer_features
    if embed_features is not None:
        mapping["embed_features"] = embed_features
    mapping.update(lr_multiplier=0.01, activation="lrelu", w_avg_beta=0.995)
    synthesis = {
        "channel_base": channels[0], "channel_max": channels[1], "num_fp16_res": 4, "conv_clamp": 256,
        "architecture": architecture, "resample_filter": list(resample_filter), "use_noise": use_noise,
        "activation": "lrelu",
    }  # fmt: skip
    return {"z_dim": z_dim, "c_dim": c_dim, "w_dim": w_dim, "img_resolution": res, "img_channels": img_channels,
            "mapping_kwargs": mapping, "synthesis_kwargs": synthesis}  # fmt: skip


def discriminator_kwargs(res, channels, architecture, c_dim=0, img_channels=3, mbstd_num_channels=1,
                         cmap_dim=None, mapping_layers=8):  # fmt: skip
    """Discriminator kwargs in exactly the form inference produces, with the paper defaults."""
    kwargs = {
        "c_dim": c_dim, "img_resolution": res, "img_channels": img_channels, "architecture": architecture,
        "channel_base": channels[0], "channel_max": channels[1], "num_fp16_res": 4, "conv_clamp": 256,
    }  # fmt: skip
    if c_dim:
        kwargs["cmap_dim"] = cmap_dim
        kwargs["mapping_kwargs"] = {"num_layers": mapping_layers, "lr_multiplier": 0.01, "activation": "lrelu"}
    kwargs["block_kwargs"] = {"activation": "lrelu", "resample_filter": [1, 3, 3, 1]}
    kwargs["epilogue_kwargs"] = {"mbstd_group_size": 4, "mbstd_num_channels": mbstd_num_channels,
                                 "activation": "lrelu"}  # fmt: skip
    return kwargs


# Resolutions 16-256, channel_base/max, c_dim 0/3, img_channels 1/3/4, 1-8 mapping layers, every
# architecture; channel_base is the smallest power of two that gives the counts (what inference picks).
GENERATOR_CASES = [
    generator_kwargs(16, 16, 16, (256, 32), "skip"),
    generator_kwargs(8, 12, 32, (512, 32), "orig", img_channels=1, num_layers=1),
    generator_kwargs(16, 16, 64, (1024, 32), "resnet", c_dim=3, img_channels=4, num_layers=8),
    generator_kwargs(16, 24, 256, (1024, 16), "skip", c_dim=3, num_layers=3, layer_features=20, embed_features=8),
    generator_kwargs(32, 32, 16, (128, 32), "resnet", use_noise=False, resample_filter=(1, 1)),
]
DISCRIMINATOR_CASES = [
    discriminator_kwargs(16, (256, 32), "resnet"),
    discriminator_kwargs(32, (512, 32), "skip", img_channels=1, mbstd_num_channels=0),
    discriminator_kwargs(64, (1024, 32), "orig", c_dim=3, img_channels=4, cmap_dim=32, mapping_layers=2),
    discriminator_kwargs(256, (1024, 16), "resnet", c_dim=3, cmap_dim=24, mapping_layers=0, mbstd_num_channels=2),
]


def _random_net(class_name: str, kwargs: dict, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = build_network(class_name, kwargs)
    with torch.no_grad():
        for tensor in net.parameters():
            tensor.normal_()
    return net


def _random_state(class_name: str, kwargs: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """A real ``nn.Module.state_dict()``: an OrderedDict with ``_metadata``, as files hold them."""
    state = _random_net(class_name, kwargs, seed).state_dict()
    assert hasattr(state, "_metadata")
    return state


def _assert_same_tensors(a: dict, b: dict):
    assert set(a) == set(b)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def _loads_strictly(spec):
    net = build_network(spec.class_name, spec.init_kwargs)
    net.load_state_dict(spec.state_dict, strict=True)
    return net


# ----------------------------------------------------------------------------------------------
# Inference


def _generator_id(kwargs: dict) -> str:
    return f"G{kwargs['img_resolution']}-{kwargs['synthesis_kwargs']['architecture']}"


@pytest.mark.parametrize("kwargs", GENERATOR_CASES, ids=_generator_id)
def test_infer_generator_kwargs(kwargs):
    state = _random_state("Generator", kwargs)
    inferred, notes = infer_generator_kwargs(state)
    assert inferred == kwargs
    assert notes[0].startswith("inferred from tensors:") and "z_dim=" in notes[0]
    assert notes[1].startswith("defaulted") and "synthesis_kwargs.conv_clamp=256" in notes[1]
    build_network("Generator", inferred).load_state_dict(state, strict=True)


@pytest.mark.parametrize("kwargs", DISCRIMINATOR_CASES, ids=lambda k: f"D{k['img_resolution']}-{k['architecture']}")
def test_infer_discriminator_kwargs(kwargs):
    state = _random_state("Discriminator", kwargs)
    inferred, notes = infer_discriminator_kwargs(state)
    assert inferred == kwargs
    assert "epilogue_kwargs.mbstd_num_channels=" in notes[0]
    assert ("epilogue_kwargs.mbstd_group_size=4" in notes[1]) == (kwargs["epilogue_kwargs"]["mbstd_num_channels"] > 0)
    build_network("Discriminator", inferred).load_state_dict(state, strict=True)


def test_inference_with_non_paper_settings_loads_and_says_what_was_defaulted():
    original = generator_kwargs(16, 16, 32, (4096, 64), "skip")  # channel_base larger than needed
    original["synthesis_kwargs"].update(num_fp16_res=0, conv_clamp=None)
    state = _random_state("Generator", original)
    inferred, notes = infer_generator_kwargs(state)
    assert inferred["synthesis_kwargs"]["channel_base"] == 2048  # same network, smallest base
    assert inferred["synthesis_kwargs"]["conv_clamp"] == PAPER_DEFAULTS["conv_clamp"]
    assert "synthesis_kwargs.num_fp16_res=4" in notes[1]
    build_network("Generator", inferred).load_state_dict(state, strict=True)


@pytest.mark.parametrize(
    "channels, expected",
    [
        ({4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64}, (16384, 512)),
        ({4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}, (32768, 512)),
        ({4: 64, 8: 64, 16: 64, 32: 64}, (2048, 64)),
        ({4: 48, 8: 24, 16: 12}, (192, 48)),  # no power of two fits: the smallest base that does
        ({4: 64, 8: 40, 16: 24}, None),  # 8x8 needs 320 <= base < 328, 16x16 needs 384 <= base < 400
        ({4: 32, 8: 64}, None),  # counts never grow with resolution
    ],
)
def test_fit_channel_base_max(channels, expected):
    assert fit_channel_base_max(channels) == expected


def test_channel_counts_that_fit_no_formula_are_an_error():
    state = _random_state("Generator", generator_kwargs(16, 16, 16, (256, 32), "skip"))
    state["synthesis.b16.conv1.weight"] = torch.zeros([48, 16, 3, 3])
    with pytest.raises(ConversionError, match=r"x\.pt: channel counts per resolution \(4: 32, 8: 32, 16: 48\)"):
        infer_generator_kwargs(state, "x.pt")


# ----------------------------------------------------------------------------------------------
# File layouts


@pytest.fixture(scope="module")
def networks():
    g_kwargs = GENERATOR_CASES[2]
    d_kwargs = discriminator_kwargs(64, (1024, 32), "resnet", c_dim=3, cmap_dim=32)
    return {
        "G": (g_kwargs, _random_state("Generator", g_kwargs, seed=1)),
        "G_ema": (g_kwargs, _random_state("Generator", g_kwargs, seed=2)),
        "D": (d_kwargs, _random_state("Discriminator", d_kwargs, seed=3)),
    }


@pytest.mark.parametrize(
    "names",
    [("G", "D", "G_ema"), ("g", "d", "g_ema"), ("generator", "discriminator", "generator_ema")],
)
def test_dict_of_state_dicts(tmp_path, networks, names, save):
    payload = {new: networks[old][1] for new, old in zip(names, ("G", "D", "G_ema"))}
    payload["g_optim"] = _stepped_adam_state(networks["G"][0])
    payload["iteration"] = 12000
    path = save(payload, tmp_path / "ckpt.pt")
    result = read_state_dict_file(path)
    assert result.format == FORMAT == "state-dict-pt"
    for slot in ("G_ema", "G", "D"):
        spec = getattr(result, slot)
        kwargs, state = networks[slot]
        assert spec.init_kwargs == kwargs
        _assert_same_tensors(spec.state_dict, state)
        _loads_strictly(spec)
    assert result.extra["ignored_entries"] == ["g_optim", "iteration"]
    assert any("ignored non-network entries" in note for note in result.notes)
    for slot in ("G_ema", "G", "D"):
        assert sum(note.startswith(f"{slot}: inferred from tensors") for note in result.notes) == 1


def test_imagenet_style_g_and_d_only(tmp_path, networks, save):
    """Like the ImageNet StyleGAN2-ADA release of Grigoryev et al.: {'G': ..., 'D': ...}."""
    path = save({"G": networks["G"][1], "D": networks["D"][1]}, tmp_path / "imagenet-style-state.pt")
    result = read_state_dict_file(path)
    assert result.G is None
    _assert_same_tensors(result.G_ema.state_dict, networks["G"][1])
    _assert_same_tensors(result.D.state_dict, networks["D"][1])
    assert any("used as G_ema" in note for note in result.notes)


def _stepped_adam_state(g_kwargs: dict) -> dict:
    """A real optimizer state dict (Adam after one step: step counts, moments, param groups)."""
    net = _random_net("Generator", g_kwargs, seed=4)
    opt = torch.optim.Adam(net.parameters(), lr=0.002, betas=(0.0, 0.99))
    net(torch.randn([2, net.z_dim]), torch.zeros([2, net.c_dim]).index_fill_(1, torch.tensor([0]), 1)).square().mean().backward()
    opt.step()
    return opt.state_dict()


def _wrapped(net: torch.nn.Module, wrappers: str) -> torch.nn.Module:
    """``net`` inside real wrappers: 'dp' = nn.DataParallel (``module.``), 'compile' =
    torch.compile (``_orig_mod.``; nothing is compiled until it is called)."""
    for wrapper in wrappers.split("+"):
        net = torch.nn.DataParallel(net) if wrapper == "dp" else torch.compile(net)
    return net


@pytest.mark.parametrize("slot, wrappers, prefix",
                         [("G_ema", "dp", "module."), ("D", "dp", "module."), ("G_ema", "compile+dp", "module._orig_mod.")])  # fmt: skip
def test_single_network_with_wrapper_prefix(tmp_path, networks, slot, wrappers, prefix, save):
    kwargs, state = networks["G_ema" if slot == "G_ema" else "D"]
    net = build_network("Generator" if slot == "G_ema" else "Discriminator", kwargs)
    net.load_state_dict(state)
    wrapped_state = _wrapped(net, wrappers).state_dict()
    assert all(name.startswith(prefix) for name in wrapped_state)
    path = save(wrapped_state, tmp_path / "net.pth")
    result = read_state_dict_file(path)
    spec = getattr(result, slot)
    assert spec.init_kwargs == kwargs
    _assert_same_tensors(spec.state_dict, state)
    other = "D" if slot == "G_ema" else "G_ema"
    assert getattr(result, other) is None and result.G is None
    assert any(f"removed tensor-name prefix {prefix!r}" in note for note in result.notes)


def test_state_dict_wrapper_and_dataparallel_inside_dict(tmp_path, networks, save):
    path = save({"state_dict": networks["D"][1], "epoch": 3}, tmp_path / "wrapped.pt")
    _assert_same_tensors(read_state_dict_file(path).D.state_dict, networks["D"][1])
    kwargs, state = networks["G"]
    net = build_network("Generator", kwargs)
    net.load_state_dict(state)
    path = save({"G": torch.nn.DataParallel(net).state_dict()}, tmp_path / "dp.pt")
    _assert_same_tensors(read_state_dict_file(path).G_ema.state_dict, networks["G"][1])


def test_config_overrides_inferred_kwargs(tmp_path, networks):
    kwargs, state = networks["D"]
    exact = copy.deepcopy(kwargs)
    exact.update(num_fp16_res=0, conv_clamp=None)
    exact["epilogue_kwargs"]["mbstd_group_size"] = 8
    path = tmp_path / "d.pt"
    torch.save({"D": state}, path)
    config = {"discriminator": {"num_fp16_res": 0, "conv_clamp": None, "epilogue_kwargs": {"mbstd_group_size": 8}}}
    result = read_state_dict_file(path, config=config)
    assert result.D.init_kwargs == exact
    assert any("given by config (override): conv_clamp, epilogue_kwargs, num_fp16_res" in n for n in result.notes)


def test_init_kwargs_entry_is_used(tmp_path, networks):
    """ganzoo's export writes {'G': ..., 'D': ..., 'G_ema': ..., 'init_kwargs': {role: kwargs}}."""
    g_kwargs, g_state = networks["G_ema"]
    stored = copy.deepcopy(g_kwargs)
    stored["synthesis_kwargs"].update(num_fp16_res=0, conv_clamp=None)
    path = tmp_path / "export.pt"
    torch.save({"G_ema": g_state, "init_kwargs": {"G_ema": stored}}, path)
    result = read_state_dict_file(path)
    assert result.G_ema.init_kwargs == stored
    assert "ignored_entries" not in result.extra


# ----------------------------------------------------------------------------------------------
# Errors


def test_wrong_shape_is_named(tmp_path, networks):
    state = dict(networks["G"][1])
    state["synthesis.b16.conv0.weight"] = state["synthesis.b16.conv0.weight"][:, :-1]
    path = tmp_path / "bad.pt"
    torch.save({"G_ema": state}, path)
    expected = r"bad\.pt \[G_ema\]: wrong shapes: synthesis\.b16\.conv0\.weight \[32, 31, 3, 3\]"
    with pytest.raises(ConversionError, match=expected):
        read_state_dict_file(path)


def test_missing_tensor_is_named(tmp_path, networks):
    state = dict(networks["D"][1])
    del state["b32.conv1.bias"]
    path = tmp_path / "bad.pt"
    torch.save({"D": state}, path)
    with pytest.raises(ConversionError, match=r"bad\.pt \[D\]: missing tensors: b32\.conv1\.bias"):
        read_state_dict_file(path)


def test_missing_tensor_needed_for_inference_is_named(tmp_path, networks):
    state = dict(networks["D"][1])
    del state["b4.conv.weight"]
    path = tmp_path / "bad.pt"
    torch.save({"D": state}, path)
    with pytest.raises(ConversionError, match=r"missing tensor b4\.conv\.weight"):
        read_state_dict_file(path)


def test_unexpected_tensor_is_named(tmp_path, networks):
    state = dict(networks["G"][1])
    state["synthesis.b8.extra"] = torch.zeros(3)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(ConversionError, match=r"unexpected tensors: synthesis\.b8\.extra"):
        read_state_dict_file(path)


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"optimizer": {"lr": torch.tensor(1.0)}}, "no network state dict found"),
        ({"G": {"x": torch.zeros(1)}}, "not those of any known family's generator"),
        ({"G": [1, 2]}, "entry 'G' is not a state dict"),
        ({"foo.weight": torch.zeros(2)}, "a single state dict of no known family's network \\(stylegan2: a generator has mapping"),
        ([torch.zeros(1)], "expected a dict of state dicts"),
    ],
)
def test_not_a_stylegan2_file(tmp_path, payload, message):
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    with pytest.raises(ConversionError, match=message):
        read_state_dict_file(path)


def test_bad_config(tmp_path, networks):
    path = tmp_path / "d.pt"
    torch.save({"D": networks["D"][1]}, path)
    with pytest.raises(ConversionError, match="config"):
        read_state_dict_file(path, config={"discriminator": 3})
    with pytest.raises(ConversionError, match="do not build a Discriminator"):
        read_state_dict_file(path, config={"discriminator": {"no_such_kwarg": 1}})


# ----------------------------------------------------------------------------------------------
# Real StyleGAN2-ADA snapshots: their state dicts, saved plainly, read back


@pytest.mark.parametrize("name", ["tiny32", "cond64"])
def test_stylegan2_ada_fixture_state_dicts(tmp_path, name, shared_fixtures, save):
    fixtures = shared_fixtures / "stylegan2-ada"
    snapshot = read_stylegan2_ada_pickle(fixtures / name / f"{name}-snapshot.pkl")
    # The file as the reference code's users write it: real state_dict()s of the built networks.
    state_dicts = {slot: _loads_strictly(getattr(snapshot, slot)).state_dict() for slot in ("G", "D", "G_ema")}
    path = save(state_dicts, tmp_path / f"{name}-state.pt")

    inferred = read_state_dict_file(path)
    for slot in ("G_ema", "G", "D"):
        original, spec = getattr(snapshot, slot), getattr(inferred, slot)
        _assert_same_tensors(spec.state_dict, original.state_dict)
        _loads_strictly(spec)
    g, g0 = inferred.G_ema.init_kwargs, snapshot.G_ema.init_kwargs
    for key in ("z_dim", "w_dim", "c_dim", "img_resolution", "img_channels"):
        assert g[key] == g0[key]
    assert g["mapping_kwargs"]["num_layers"] == g0["mapping_kwargs"]["num_layers"]

    # With the snapshot's own kwargs as config, the outputs are the reference outputs.
    config = {"generator": snapshot.G_ema.init_kwargs, "discriminator": snapshot.D.init_kwargs}
    exact = read_state_dict_file(path, config=config)
    ref = np.load(fixtures / name / f"{name}-reference.npz")
    G = _loads_strictly(exact.G_ema).eval()
    D = _loads_strictly(exact.D).eval()
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    with torch.no_grad():
        img = G(z, c, noise_mode="const", force_fp32=True)
        logits = D(torch.from_numpy(ref["d_input"]), c, force_fp32=True)
    assert (img - torch.from_numpy(ref["img"])).abs().max().item() <= 1e-4
    assert (logits - torch.from_numpy(ref["d_logits_input"])).abs().max().item() <= 1e-4


def test_reference_state_dict_file_loss32(shared_fixtures, tmp_path):
    """``loss32-networks.pt`` was written by the reference code itself:
    ``torch.save({'G': G.state_dict(), 'D': D.state_dict()})`` (zip; OrderedDicts with _metadata)."""
    from ganzoo.cli import main

    folder = shared_fixtures / "stylegan2-ada" / "loss32"
    path = folder / "loss32-networks.pt"
    trusted = torch.load(path, map_location="cpu", weights_only=True)
    assert hasattr(trusted["G"], "_metadata")  # the fixture is what the issue is about
    settings = json.loads((folder / "loss32-config.json").read_text())
    config = {"generator": settings["generator_kwargs"], "discriminator": settings["discriminator_kwargs"]}
    result = read_state_dict_file(path, config=config)
    _assert_same_tensors(result.G_ema.state_dict, trusted["G"])  # the file's only generator
    _assert_same_tensors(result.D.state_dict, trusted["D"])
    assert result.G is None
    assert result.G_ema.init_kwargs["c_dim"] == 3 and result.D.init_kwargs["channel_max"] == 32

    # Through `ganzoo convert` (kwargs inferred) and back out of the checkpoint directory.
    assert main(["convert", str(path), str(tmp_path / "out")]) == 0
    gan = ganzoo.load(tmp_path / "out")
    _assert_same_tensors(gan.G_ema.state_dict(), trusted["G"])
    _assert_same_tensors(gan.D.state_dict(), trusted["D"])
