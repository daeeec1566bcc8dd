"""Tests for the TensorFlow StyleGAN2 pickle reader (ganzoo.architectures.stylegan2.tf_pickle)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from ganzoo.architectures.stylegan2.tf_pickle import FORMAT, convert_tf_networks, read_stylegan2_tf_pickle
from ganzoo.errors import ConversionError
from ganzoo.architectures.stylegan2.networks import build_network
from helpers import fixtures_dir


FIXTURES = fixtures_dir() / "stylegan2-tf" / "tf32"
TF_PICKLE = FIXTURES / "tf32-tf.pkl"
REFERENCE = FIXTURES / "tf32-reference.npz"
TOLERANCE = 1e-4


class FakeNetwork:
    """Stands in for what load_pickle returns for a dnnlib.tflib Network: an object with .state."""

    def __init__(self, state: dict):
        self.state = state


def _plain_copy(net) -> FakeNetwork:
    """A mutable deep copy of a loaded TF network, as FakeNetwork objects."""
    state = dict(net.state)
    state["static_kwargs"] = dict(state["static_kwargs"])
    state["variables"] = [(name, np.array(value)) for name, value in state["variables"]]
    state["components"] = {name: _plain_copy(comp) for name, comp in state["components"].items()}
    return FakeNetwork(state)


@pytest.fixture(scope="module")
def tf32():
    return read_stylegan2_tf_pickle(TF_PICKLE)


@pytest.fixture(scope="module")
def tf32_raw():
    from ganzoo.readers.safe_pickle import load_pickle

    return load_pickle(TF_PICKLE)


def _build(spec):
    net = build_network(spec.class_name, spec.init_kwargs).eval()
    net.load_state_dict(spec.state_dict, strict=True)
    return net


# ----------------------------------------------------------------------------------------------
# Acceptance: the tf32 fixture reproduces the reference converter's outputs


def test_tf32_reproduces_reference_outputs(tf32):
    ref = np.load(REFERENCE)
    G_ema, G, D = _build(tf32.G_ema), _build(tf32.G), _build(tf32.D)
    z = torch.from_numpy(ref["z"])
    c = torch.from_numpy(ref["c"])
    outputs = {}
    with torch.no_grad():
        outputs["ws"] = G_ema.mapping(z, c, truncation_psi=1)
        if "ws_trunc06" in ref:
            outputs["ws_trunc06"] = G_ema.mapping(z, c, truncation_psi=0.6)
        outputs["img"] = G_ema.synthesis(outputs["ws"], noise_mode="const", force_fp32=True)
        outputs["img_trunc06"] = G_ema(z, c, truncation_psi=0.6, noise_mode="const", force_fp32=True)
        outputs["img_G"] = G(z, c, truncation_psi=1, noise_mode="const", force_fp32=True)
        outputs["d_logits_input"] = D(torch.from_numpy(ref["d_input"]), c, force_fp32=True)
        outputs["d_logits_img"] = D(torch.from_numpy(ref["img"]), c, force_fp32=True)
    for key, value in outputs.items():
        expected = torch.from_numpy(ref[key])
        assert value.shape == expected.shape, key
        error = (value - expected).abs().max().item()
        assert error <= TOLERANCE, f"{key}: max abs error {error}"


def test_tf32_kwargs_and_notes(tf32):
    assert tf32.format == FORMAT == "stylegan2-tf-pkl"
    g = tf32.G_ema.init_kwargs
    assert (g["z_dim"], g["w_dim"], g["c_dim"], g["img_resolution"], g["img_channels"]) == (32, 32, 0, 32, 3)
    assert g["mapping_kwargs"]["num_layers"] == 2
    assert g["mapping_kwargs"]["lr_multiplier"] == 0.01
    # fmap_base 1024 in TF counts stages from 2x2, so channel_base doubles.
    assert g["synthesis_kwargs"]["channel_base"] == 2048
    assert g["synthesis_kwargs"]["channel_max"] == 64
    assert g["synthesis_kwargs"]["architecture"] == "skip"
    assert g["synthesis_kwargs"]["conv_clamp"] is None
    assert g["synthesis_kwargs"]["num_fp16_res"] == 0
    d = tf32.D.init_kwargs
    assert d["architecture"] == "resnet"
    assert d["epilogue_kwargs"]["mbstd_group_size"] == 4
    assert d["epilogue_kwargs"]["mbstd_num_channels"] == 1
    assert tf32.G.init_kwargs == g
    assert len(tf32.notes) == 3
    assert tf32.notes[0].startswith("G_ema: stylegan2 TF generator")
    assert "fmap_decay=1.0" in tf32.notes[0]
    for spec in (tf32.G_ema, tf32.G, tf32.D):
        assert all(t.dtype == torch.float32 for t in spec.state_dict.values())


def test_tf32_special_tensors(tf32, tf32_raw):
    _, _, gs = tf32_raw
    synth = {n: v for n, v in gs.state["components"]["synthesis"].state["variables"]}
    sd = tf32.G_ema.state_dict
    np.testing.assert_array_equal(sd["synthesis.b4.conv1.affine.bias"].numpy(), synth["4x4/Conv/mod_bias"] + 1)
    np.testing.assert_array_equal(sd["synthesis.b16.conv1.noise_const"].numpy(), synth["noise4"][0, 0])
    np.testing.assert_array_equal(sd["synthesis.b16.conv0.noise_const"].numpy(), synth["noise3"][0, 0])
    np.testing.assert_array_equal(
        sd["synthesis.b8.conv0.weight"].numpy(), synth["8x8/Conv0_up/weight"][::-1, ::-1].transpose(3, 2, 0, 1)
    )
    top = {n: v for n, v in gs.state["variables"]}
    np.testing.assert_array_equal(sd["mapping.w_avg"].numpy(), top["dlatent_avg"])
    expected_filter = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64
    np.testing.assert_allclose(sd["synthesis.b8.resample_filter"].numpy(), expected_filter, rtol=0, atol=1e-7)
    np.testing.assert_allclose(tf32.D.state_dict["b16.resample_filter"].numpy(), expected_filter, rtol=0, atol=1e-7)


def _assert_same_state(spec, expected):
    assert spec.state_dict.keys() == expected.state_dict.keys()
    for name, value in expected.state_dict.items():
        assert torch.equal(spec.state_dict[name], value), name
    assert spec.init_kwargs == expected.init_kwargs


def test_lone_gs_network(tf32, tf32_raw):
    result = convert_tf_networks(_plain_copy(tf32_raw[2]), "gs.pkl")
    assert result.G_ema is not None and result.G is None and result.D is None
    # The lone Gs gives the same G_ema as the full (G, D, Gs) pickle.
    _assert_same_state(result.G_ema, tf32.G_ema)


# ----------------------------------------------------------------------------------------------
# Errors: every target matched, every variable used, shapes checked, kwargs understood


def _variables(net: FakeNetwork, component: str | None = None) -> list:
    return (net.state["components"][component] if component else net).state["variables"]


def test_missing_variable_is_named(tf32_raw):
    g, d, gs = (_plain_copy(n) for n in tf32_raw)
    synth = gs.state["components"]["synthesis"]
    synth.state["variables"] = [(n, v) for n, v in synth.state["variables"] if n != "8x8/Conv0_up/weight"]
    with pytest.raises(ConversionError, match=r"synthesis\.b8\.conv0\.weight <- synthesis/8x8/Conv0_up/weight"):
        convert_tf_networks((g, d, gs), "x.pkl")


def test_unused_variable_is_named(tf32_raw):
    g, d, gs = (_plain_copy(n) for n in tf32_raw)
    _variables(d).append(("4x4/Extra/weight", np.zeros([3], np.float32)))
    with pytest.raises(ConversionError, match=r"x\.pkl \[D\]: TF variables left unused: 4x4/Extra/weight"):
        convert_tf_networks((g, d, gs), "x.pkl")


def test_lod_variable_is_ignored(tf32, tf32_raw):
    g, d, gs = (_plain_copy(n) for n in tf32_raw)
    _variables(gs).append(("lod", np.zeros([], np.float32)))
    result = convert_tf_networks((g, d, gs), "x.pkl")
    # No error, and nothing of it lands anywhere: the same networks as without it.
    for role in ("G_ema", "G", "D"):
        _assert_same_state(getattr(result, role), getattr(tf32, role))


def test_wrong_shape_is_named(tf32_raw):
    g, d, gs = (_plain_copy(n) for n in tf32_raw)
    d.state["variables"] = [
        (n, v[:, :-1] if n == "Output/weight" else v) for n, v in d.state["variables"]
    ]
    with pytest.raises(ConversionError, match=r"wrong shapes: b4\.out\.weight \[0, 64\]"):
        convert_tf_networks((g, d, gs), "x.pkl")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mystery_option": 3}, "unknown TF build kwargs mystery_option"),
        ({"label_size": 5}, "LabelConcat"),
        ({"normalize_latents": False}, "normalize_latents"),
        ({"architecture": "fancy"}, "unknown synthesis architecture"),
        ({"resolution": 48}, "not a power of two"),
    ],
)
def test_unsupported_generator_kwargs(tf32_raw, kwargs, message):
    g, d, gs = (_plain_copy(n) for n in tf32_raw)
    gs.state["static_kwargs"].update(kwargs)
    with pytest.raises(ConversionError, match=message):
        convert_tf_networks((g, d, gs), "x.pkl")


def test_unsupported_build_function(tf32_raw):
    g, d, gs = (_plain_copy(n) for n in tf32_raw)
    d.state["build_func_name"] = "D_basic"
    with pytest.raises(ConversionError, match="D_basic, not a StyleGAN2 discriminator"):
        convert_tf_networks((g, d, gs), "x.pkl")


def test_not_a_network_tuple():
    with pytest.raises(ConversionError, match=r"x\.pkl: expected a pickled \(G, D, Gs\) tuple"):
        convert_tf_networks({"G": 1}, "x.pkl")
    with pytest.raises(ConversionError, match="not a dnnlib.tflib Network"):
        convert_tf_networks((1, 2, 3), "x.pkl")


# ----------------------------------------------------------------------------------------------
# Other architectures: networks written out in the TF layouts (as the TF code names and stores
# its variables) must come back unchanged.


def _nf_kwargs(channel_base: int, channel_max: int) -> dict:
    return {"fmap_base": channel_base // 2, "fmap_max": channel_max}


def _tf_dense(w: torch.Tensor) -> np.ndarray:
    return w.numpy().T.copy()


def _tf_conv(w: torch.Tensor, flip: bool = False) -> np.ndarray:
    x = w.numpy().transpose(2, 3, 1, 0)
    return (x[::-1, ::-1] if flip else x).copy()


def _export_generator(G, tf_kwargs: dict, family: str) -> FakeNetwork:
    sd = {k: v.detach().clone() for k, v in G.state_dict().items()}
    mapping_vars, synth_vars = [], []
    if "mapping.embed.weight" in sd:
        mapping_vars += [("LabelEmbed/weight", _tf_dense(sd["mapping.embed.weight"])),
                         ("LabelEmbed/bias", sd["mapping.embed.bias"].numpy())]  # fmt: skip
    i = 0
    while f"mapping.fc{i}.weight" in sd:
        mapping_vars += [(f"Dense{i}/weight", _tf_dense(sd[f"mapping.fc{i}.weight"])),
                         (f"Dense{i}/bias", sd[f"mapping.fc{i}.bias"].numpy())]  # fmt: skip
        i += 1

    def layer(prefix: str, scope: str, flip: bool, noise_index: int | None):
        out = [(f"{scope}/weight", _tf_conv(sd[f"{prefix}.weight"], flip)),
               (f"{scope}/bias", sd[f"{prefix}.bias"].numpy()),
               (f"{scope}/mod_weight", _tf_dense(sd[f"{prefix}.affine.weight"])),
               (f"{scope}/mod_bias", sd[f"{prefix}.affine.bias"].numpy() - 1)]  # fmt: skip
        if f"{prefix}.noise_strength" in sd:
            out.append((f"{scope}/noise_strength", sd[f"{prefix}.noise_strength"].numpy()))
            out.append((f"noise{noise_index}", sd[f"{prefix}.noise_const"].numpy()[None, None]))
        return out

    synth_vars.append(("4x4/Const/const", sd["synthesis.b4.const"].numpy()[None]))
    synth_vars += layer("synthesis.b4.conv1", "4x4/Conv", False, 0)
    res = 4
    while f"synthesis.b{res}.const" in sd or f"synthesis.b{res}.conv1.weight" in sd:
        log2 = int(math.log2(res))
        if res > 4:
            synth_vars += layer(f"synthesis.b{res}.conv0", f"{res}x{res}/Conv0_up", True, 2 * log2 - 5)
            synth_vars += layer(f"synthesis.b{res}.conv1", f"{res}x{res}/Conv1", False, 2 * log2 - 4)
        if f"synthesis.b{res}.skip.weight" in sd:
            synth_vars.append((f"{res}x{res}/Skip/weight", _tf_conv(sd[f"synthesis.b{res}.skip.weight"], True)))
        if f"synthesis.b{res}.torgb.weight" in sd:
            synth_vars += layer(f"synthesis.b{res}.torgb", f"{res}x{res}/ToRGB", False, None)
        res *= 2
    synth_func = "G_synthesis_stylegan2" if family == "stylegan2" else "G_synthesis"

    def net(name, func, variables, components=None):
        return FakeNetwork({
            "version": 4, "name": name, "static_kwargs": dict(tf_kwargs), "components": components or {},
            "build_module_src": "# omitted", "build_func_name": func, "variables": variables,
        })  # fmt: skip

    return net("G", "G_main", [("dlatent_avg", sd["mapping.w_avg"].numpy())], {
        "mapping": net("G_mapping", "G_mapping", mapping_vars),
        "synthesis": net("G_synthesis", synth_func, synth_vars),
    })  # fmt: skip


def _export_discriminator(D, tf_kwargs: dict, family: str) -> FakeNetwork:
    sd = {k: v.detach().clone() for k, v in D.state_dict().items()}
    variables = []
    for name, value in sd.items():
        parts = name.split(".")
        if name.endswith("resample_filter"):
            continue
        if parts[0] == "mapping":
            scope = "LabelEmbed" if parts[1] == "embed" else f"Mapping{parts[1][2:]}"
            variables.append((f"{scope}/{parts[2]}", _tf_dense(value) if parts[2] == "weight" else value.numpy()))
            continue
        res = int(parts[0][1:])
        layer = {"fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down", "skip": "Skip", "conv": "Conv",
                 "fc": "Dense0", "out": "Output"}[parts[1]]  # fmt: skip
        scope = "Output" if layer == "Output" else f"{res}x{res}/{layer}"
        if parts[2] == "weight":
            value = _tf_dense(value) if layer in ("Dense0", "Output") else _tf_conv(value)
        else:
            value = value.numpy()
        variables.append((f"{scope}/{parts[2]}", value))
    func = "D_stylegan2" if family == "stylegan2" else "D_main"
    return FakeNetwork({"version": 4, "name": "D", "static_kwargs": dict(tf_kwargs), "components": {},
                        "build_module_src": "# omitted", "build_func_name": func, "variables": variables})  # fmt: skip


CASES = [
    # (family, generator TF kwargs, discriminator TF kwargs)
    ("stylegan2",
     dict(latent_size=16, dlatent_size=16, resolution=16, num_channels=3, mapping_layers=3, mapping_fmaps=16,
          architecture="resnet", **_nf_kwargs(256, 32)),
     dict(resolution=16, num_channels=3, architecture="skip", mbstd_group_size=2, mbstd_num_features=2,
          **_nf_kwargs(256, 32))),
    ("stylegan2",
     dict(latent_size=8, dlatent_size=12, resolution=32, num_channels=1, mapping_layers=1, architecture="orig",
          **_nf_kwargs(512, 32)),
     dict(resolution=32, num_channels=1, architecture="orig", mbstd_group_size=1, **_nf_kwargs(512, 32))),
    ("stylegan2-ada-tf",
     dict(latent_size=16, dlatent_size=16, label_size=3, resolution=16, num_channels=4, mapping_layers=2,
          mapping_fmaps=24, architecture="skip", num_fp16_res=2, conv_clamp=256, **_nf_kwargs(256, 32)),
     dict(label_size=3, resolution=16, num_channels=4, architecture="resnet", mapping_layers=2, mbstd_group_size=4,
          num_fp16_res=2, conv_clamp=256, **_nf_kwargs(256, 32))),
    ("stylegan2-ada-tf",
     dict(latent_size=16, dlatent_size=16, resolution=8, use_noise=False, **_nf_kwargs(128, 16)),
     dict(resolution=8, architecture="orig", mbstd_num_features=0, **_nf_kwargs(128, 16))),
]  # fmt: skip


@pytest.mark.parametrize("family, g_kwargs, d_kwargs", CASES)
def test_tf_layout_round_trip(family, g_kwargs, d_kwargs):
    from ganzoo.architectures.stylegan2.tf_kwargs import discriminator_kwargs_from_tf, generator_kwargs_from_tf

    torch.manual_seed(0)
    g_init, _ = generator_kwargs_from_tf(g_kwargs, family, {}, "case")
    d_init, _ = discriminator_kwargs_from_tf(d_kwargs, family, "case")
    G = build_network("Generator", g_init)
    D = build_network("Discriminator", d_init)
    with torch.no_grad():  # non-trivial values everywhere, including zero-initialized ones
        for tensor in list(G.parameters()) + list(D.parameters()) + [G.mapping.w_avg]:
            tensor.normal_()
    tf_g = _export_generator(G, g_kwargs, family)
    tf_d = _export_discriminator(D, d_kwargs, family)
    result = convert_tf_networks((copy.deepcopy(tf_g), tf_d, tf_g), "case.pkl")
    for spec, net in ((result.G_ema, G), (result.G, G), (result.D, D)):
        expected = net.state_dict()
        assert set(spec.state_dict) == set(expected)
        for name, value in expected.items():
            # mod_bias goes through -1 and +1, so allow float32 rounding
            torch.testing.assert_close(spec.state_dict[name], value, rtol=0, atol=1e-6, msg=name)
        _build(spec)
    if family == "stylegan2-ada-tf" and g_kwargs.get("label_size"):
        assert result.G_ema.init_kwargs["mapping_kwargs"]["embed_features"] == 16
        assert result.D.init_kwargs["cmap_dim"] == 32
    if d_kwargs.get("mbstd_group_size") == 1:
        assert result.D.init_kwargs["epilogue_kwargs"]["mbstd_num_channels"] == 0
