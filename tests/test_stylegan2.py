"""The StyleGAN2 networks: exactness against the official networks, and a grid of other configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganzoo.checkpoint import GAN
from ganzoo.architectures.stylegan2.ada_pickle import read_stylegan2_ada_pickle
from ganzoo import ops
from ganzoo.architectures.stylegan2.networks import Discriminator, Generator, build_network

FIXTURES = ["tiny32", "cond64"]


def _reference_outputs(nets: dict, ref: dict, device: str = "cpu", force_fp32: bool = True) -> dict[str, np.ndarray]:
    G, G_raw, D = (nets[role].to(device) for role in ("G_ema", "G", "D"))
    z = torch.from_numpy(ref["z"]).to(device)
    c = torch.from_numpy(ref["c"]).to(device)
    fp32 = dict(force_fp32=force_fp32)
    # TF32 (on by default for CUDA convolutions) is ~1e-3 off float32: the reference is float32.
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        return _outputs(G, G_raw, D, z, c, ref, device, fp32)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32


def _outputs(G, G_raw, D, z, c, ref, device, fp32) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = {"ws": G.mapping(z, c), "ws_trunc06": G.mapping(z, c, truncation_psi=0.6)}
        out["img"] = G.synthesis(out["ws"], noise_mode="const", **fp32)
        out["img_trunc06"] = G.synthesis(out["ws_trunc06"], noise_mode="const", **fp32)
        out["img_G"] = G_raw(z, c, noise_mode="const", **fp32)
        out["d_logits_input"] = D(torch.from_numpy(ref["d_input"]).to(device), c, **fp32)
        out["d_logits_img"] = D(torch.from_numpy(ref["img"]).to(device), c, **fp32)
    return {key: value.float().cpu().numpy() for key, value in out.items()}


def _official_nets(folder, name) -> dict:
    foreign = read_stylegan2_ada_pickle(folder / f"{name}-snapshot.pkl")
    nets = {}
    for role in ("G_ema", "G", "D"):
        spec = getattr(foreign, role)
        net = build_network(spec.class_name, spec.init_kwargs).eval()
        net.load_state_dict(spec.state_dict, strict=True)  # same names and shapes, no rename table
        nets[role] = net
    return nets


@pytest.mark.parametrize("name", FIXTURES)
def test_reproduces_official_networks(shared_fixtures, name, device):
    """On ``$GANZOO_TEST_DEVICE`` (CPU by default; run with ``cuda`` on a GPU machine)."""
    folder = shared_fixtures / "stylegan2-ada" / name
    ref = dict(np.load(folder / f"{name}-reference.npz"))
    nets = _official_nets(folder, name)
    config = __import__("json").loads((folder / f"{name}-config.json").read_text())
    assert sum(p.numel() for p in nets["G_ema"].parameters()) == config["G_params"]
    assert sum(p.numel() for p in nets["D"].parameters()) == config["D_params"]
    assert len(nets["G_ema"].state_dict()) == config["G_state_keys"]
    assert len(nets["D"].state_dict()) == config["D_state_keys"]
    out = _reference_outputs(nets, ref, device)
    for key, value in out.items():
        err = float(np.abs(value - ref[key]).max())
        assert err <= 1e-4, f"{name}/{key}: max abs error {err} on {device}"


@pytest.mark.parametrize("name", FIXTURES)
def test_mixed_precision_blocks(shared_fixtures, name, device):
    """Without force_fp32: float16 in the ``num_fp16_res`` highest-resolution blocks on CUDA
    (close to the float32 reference, as in StyleGAN2-ADA), exactly float32 on CPU."""
    folder = shared_fixtures / "stylegan2-ada" / name
    ref = dict(np.load(folder / f"{name}-reference.npz"))
    out = _reference_outputs(_official_nets(folder, name), ref, device, force_fp32=False)
    for key, value in out.items():
        assert np.isfinite(value).all()
        err = float(np.abs(value - ref[key]).max())
        bound = 1e-4 if not device.startswith("cuda") else 0.05 * max(float(np.abs(ref[key]).max()), 1.0)
        assert err <= bound, f"{name}/{key}: max abs error {err} on {device} (bound {bound})"


def test_fused_and_nonfused_modconv_agree():
    torch.manual_seed(0)
    G = Generator(16, 0, 16, 32, 3, synthesis_kwargs=dict(channel_base=512, channel_max=32)).eval()
    z = torch.randn(3, 16)
    with torch.no_grad():
        a = G(z, None, noise_mode="const", fused_modconv=True)
        b = G(z, None, noise_mode="const", fused_modconv=False)
    assert torch.allclose(a, b, atol=1e-5)


def test_truncation_cutoff_and_w_avg():
    torch.manual_seed(0)
    G = Generator(8, 0, 8, 16, 3, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=256, channel_max=16))  # fmt: skip
    G.mapping.w_avg.normal_()
    z = torch.randn(2, 8)
    ws = G.mapping(z, None)
    wt = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
    assert torch.allclose(wt[:, :2], G.mapping.w_avg.lerp(ws[:, :2], 0.5))
    assert torch.equal(wt[:, 2:], ws[:, 2:])
    before = G.mapping.w_avg.clone()
    G.mapping(z, None)
    assert torch.equal(G.mapping.w_avg, before)  # no update unless asked
    G.mapping(z, None, update_emas=True)
    assert not torch.equal(G.mapping.w_avg, before)


def test_empty_label_tensor_for_unconditional():
    G = Generator(8, 0, 8, 16, 3, synthesis_kwargs=dict(channel_base=256, channel_max=16)).eval()
    D = Discriminator(0, 16, 3, channel_base=256, channel_max=16)
    z = torch.randn(2, 8)
    with torch.no_grad():
        a = G(z, None, noise_mode="const")
        b = G(z, torch.zeros(2, 0), noise_mode="const")
        assert torch.equal(a, b)
        assert torch.equal(D(a, None), D(a, torch.zeros(2, 0)))


def test_upfirdn2d_resampling_preserves_constant_images():
    f = ops.setup_filter([1, 3, 3, 1])
    x = torch.ones(1, 2, 8, 8)
    up = ops.upsample2d(x, f)
    down = ops.downsample2d(x, f)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    # Away from the zero-padded border a constant stays constant (the filter has unit DC gain).
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.ones(1), atol=1e-6)
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.ones(1), atol=1e-6)


# A grid of other valid configurations: they build, run forward and backward, and round-trip
# through the checkpoint format bit-exactly.
GRID = [
    # (resolution, channel_base, channel_max, c_dim, img_channels, mapping_layers, G arch, D arch)
    (16, 256, 32, 0, 3, 1, "skip", "resnet"),
    (16, 512, 16, 3, 1, 8, "orig", "orig"),
    (32, 1024, 32, 3, 4, 2, "resnet", "skip"),
    (32, 512, 64, 0, 1, 4, "skip", "skip"),
    (64, 1024, 16, 3, 3, 3, "orig", "resnet"),
    (64, 512, 32, 0, 4, 8, "resnet", "orig"),
    (128, 1024, 16, 0, 3, 2, "skip", "resnet"),
    (256, 1024, 8, 3, 3, 2, "resnet", "skip"),
]


@pytest.mark.parametrize("res,base,cmax,c_dim,img_ch,layers,g_arch,d_arch", GRID)
def test_config_grid(tmp_path, res, base, cmax, c_dim, img_ch, layers, g_arch, d_arch):
    torch.manual_seed(res + c_dim)
    G = Generator(
        z_dim=12, c_dim=c_dim, w_dim=10, img_resolution=res, img_channels=img_ch,
        mapping_kwargs=dict(num_layers=layers),
        synthesis_kwargs=dict(channel_base=base, channel_max=cmax, architecture=g_arch, num_fp16_res=2, conv_clamp=256),
    )  # fmt: skip
    D = Discriminator(
        c_dim=c_dim, img_resolution=res, img_channels=img_ch, architecture=d_arch, channel_base=base,
        channel_max=cmax, num_fp16_res=2, conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=2),
    )  # fmt: skip
    with torch.no_grad():  # non-trivial values everywhere, not just the random init
        for p in list(G.parameters()) + list(D.parameters()):
            p.add_(torch.randn_like(p) * 0.1)
        G.mapping.w_avg.normal_()
    n = 2
    z = torch.randn(n, 12)
    c = torch.nn.functional.one_hot(torch.arange(n) % 3, 3).float() if c_dim else None
    G.train()
    img = G(z, c, noise_mode="random")
    assert img.shape == (n, img_ch, res, res)
    logits = D(img, c)
    assert logits.shape == (n, 1)
    torch.nn.functional.softplus(-logits).mean().backward()
    for name, p in list(G.named_parameters()) + list(D.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert G.num_ws == G.mapping.num_ws == G.synthesis.num_ws

    G.eval()
    gan = GAN(G, G, D, config={"license": "test"})
    gan.save(tmp_path / "ckpt")
    loaded = GAN.load(tmp_path / "ckpt")
    for role in ("G_ema", "G", "D"):
        a, b = gan.networks()[role].state_dict(), loaded.networks()[role].state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (role, k)
    with torch.no_grad():
        assert torch.equal(G(z, c, noise_mode="const"), loaded.G_ema(z, c, noise_mode="const"))
