"""The ADA pipeline: identity at p = 0, firing rates, gradients, and the adaptive p controller."""

from __future__ import annotations

import math

import pytest
import torch

from ganzoo.errors import GanzooError
from ganzoo.train.augment import PRESETS, TRANSFORMS, AdaptiveP, AugmentPipe


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models, shared cores


def _images(n: int, size: int = 8, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand([n, 3, size, size], generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)


@pytest.mark.parametrize("preset", ["bgc", "bgcfnc"])
def test_p_zero_is_the_identity_bit_for_bit(preset):
    pipe = AugmentPipe.from_preset(preset)
    images = _images(16) * 3  # outside [-1, 1] too: nothing may be clamped or rescaled
    out = pipe(images, torch.Generator().manual_seed(1))
    assert torch.equal(out, images)
    assert all(not bool(m.any()) for m in pipe.last_fired.values())


def test_each_transform_fires_with_probability_p_and_only_fired_samples_change():
    n, p = 800, 0.3
    pipe = AugmentPipe.from_preset("bgcfnc")
    assert set(PRESETS["bgcfnc"]) == set(TRANSFORMS)
    pipe.p.fill_(p)
    pipe(_images(n), torch.Generator().manual_seed(2))
    tolerance = 5 * math.sqrt(p * (1 - p) / n)  # 5 sigma: a false alarm about once in 3.5 million
    for name in TRANSFORMS:
        rate = float(pipe.last_fired[name].float().mean())
        assert abs(rate - p) < tolerance, (name, rate)

    # One transform at a time: samples it did not select pass through untouched.
    for name in TRANSFORMS:
        single = AugmentPipe(**{name: 1})
        single.p.fill_(0.5)
        images = _images(64, seed=3)
        out = single(images, torch.Generator().manual_seed(4))
        fired = single.last_fired[name]
        assert 0 < int(fired.sum()) < 64, name
        assert torch.equal(out[~fired], images[~fired]), name
        assert not torch.equal(out[fired], images[fired]), name


@pytest.mark.parametrize("name", TRANSFORMS)
def test_gradients_flow_through_every_transform(name):
    pipe = AugmentPipe(**{name: 1})
    pipe.p.fill_(1.0)
    images = _images(2, size=8, seed=5, dtype=torch.float64).requires_grad_(True)

    def augment(x):  # the same random choices on every evaluation
        return pipe(x, torch.Generator().manual_seed(6))

    assert torch.autograd.gradcheck(augment, (images,), eps=1e-6, atol=1e-5, fast_mode=True)
    out = augment(images)
    (grad,) = torch.autograd.grad((out * torch.randn_like(out)).sum(), images)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_same_generator_seed_same_augmentations():
    pipe = AugmentPipe.from_preset("bgcfnc")
    pipe.p.fill_(0.7)
    images = _images(8, size=16)
    a = pipe(images, torch.Generator().manual_seed(9))
    b = pipe(images, torch.Generator().manual_seed(9))
    c = pipe(images, torch.Generator().manual_seed(10))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_blits_are_exact_pixel_moves():
    images = _images(64, size=8, seed=11)
    pipe = AugmentPipe(xint=1)
    pipe.p.fill_(1.0)
    out = pipe(images, torch.Generator().manual_seed(12))
    # Every output is the input shifted by whole pixels: same multiset of values in its interior.
    for i in range(64):
        assert set(out[i].flatten().tolist()) <= set(images[i].flatten().tolist())
    # Exactly: a shift by (dx, dy) whole pixels (|d| <= xint_max * 8 = 1), filled from the image
    # mirrored without repeating its edge (reflect padding), and the shifts are not all zero.
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1), mode="reflect")
    shifts = []
    for i in range(64):
        found = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                 if torch.equal(out[i], padded[i, :, 1 - dy : 9 - dy, 1 - dx : 9 - dx])]  # fmt: skip
        assert len(found) == 1, (i, found)
        shifts += found
    assert len(set(shifts)) == 9  # every shift in range occurs, the zero shift too
    pipe = AugmentPipe(rotate90=1)
    pipe.p.fill_(1.0)
    out = pipe(images, torch.Generator().manual_seed(13))
    for i in range(64):
        assert any(torch.equal(out[i], torch.rot90(images[i], k, dims=(1, 2))) for k in range(4))


def test_geometric_resampling_is_band_limited_and_centered():
    # A smooth image rotated by 90 degrees through the general resampling path matches rot90.
    from ganzoo import ops
    from ganzoo.train.augment import _resample_affine, _rotation_2d, resampling_taps

    base = torch.nn.functional.interpolate(_images(2, size=6, seed=14), size=32, mode="bicubic", align_corners=False)
    f = ops.setup_filter(resampling_taps())
    rotated = _resample_affine(base, _rotation_2d(torch.full([2], math.pi / 2)), f)
    err = min(float((rotated - torch.rot90(base, k, dims=(2, 3))).abs().max()) for k in (1, 3))
    assert err < 0.05 * float(base.abs().max())
    identity = _resample_affine(base, torch.eye(3).repeat(2, 1, 1), f)
    assert float((identity - base).abs().max()) < 0.05 * float(base.abs().max())


def test_unknown_preset_is_a_user_error():
    with pytest.raises(GanzooError, match="unknown augmentation preset"):
        AugmentPipe.from_preset("xyz")


def test_adaptive_p_moves_up_when_d_overfits_and_down_when_it_does_not():
    batch, interval = 32, 4
    step = batch * interval / (500 * 1000)
    ada = AdaptiveP(target=0.6, interval=interval, speed_kimg=500)
    # D overfits: it is confidently right about every real (r_t = 1 > 0.6).
    for batch_idx in range(1, 4 * interval + 1):
        ada.accumulate(torch.ones(batch, 1))
        ada.step(batch_idx, batch)
    assert ada.last_rt == 1.0
    assert ada.p == pytest.approx(4 * step)
    # D does not overfit (r_t = -1 < 0.6): p goes back down and is clamped at 0.
    for batch_idx in range(4 * interval + 1, 12 * interval + 1):
        ada.accumulate(-torch.ones(batch, 1))
        ada.step(batch_idx, batch)
    assert ada.p == 0.0
    # p only moves every `interval` minibatches, from the signs of those minibatches.
    ada = AdaptiveP(interval=interval)
    ada.accumulate(torch.tensor([1.0, 1.0, 1.0, -1.0]))
    ada.step(1, batch)
    assert ada.p == 0.0 and ada.last_rt is None
    for batch_idx in (2, 3, 4):
        ada.accumulate(torch.tensor([1.0, 1.0, 1.0, -1.0]))
        ada.step(batch_idx, batch)
    assert ada.last_rt == pytest.approx(0.5) and ada.p == 0.0  # 0.5 < 0.6: down, clamped
    state = ada.state()
    restored = AdaptiveP(interval=interval)
    restored.load_state(state)
    assert restored.state() == state


def test_grid_sample_is_twice_differentiable_like_the_native_op(device):
    """R1 through the geometric augmentation needs d/dx of D's input gradient; CUDA's native
    grid_sample backward has no derivative, ganzoo's has (equal to the native one on CPU)."""
    import torch.nn.functional as F

    from ganzoo.train.augment import grid_sample_reflect

    gen = torch.Generator().manual_seed(0)
    x = torch.randn([2, 3, 9, 7], generator=gen, dtype=torch.float64).to(device)
    grid = (torch.rand([2, 6, 5, 2], generator=gen, dtype=torch.float64) * 2.4 - 1.2).to(device)
    weight = torch.randn([2, 3, 6, 5], generator=gen, dtype=torch.float64).to(device)

    def second_order(sample):
        xs = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad((sample(xs, grid) ** 2 * weight).sum(), xs, create_graph=True)
        (gg,) = torch.autograd.grad((g**2).sum(), xs)
        return sample(xs, grid), g, gg

    ours = second_order(grid_sample_reflect)
    assert torch.autograd.gradgradcheck(lambda t: grid_sample_reflect(t, grid), (x.clone().requires_grad_(True),))
    if x.device.type == "cpu":
        native = second_order(lambda t, g: F.grid_sample(t, g, mode="bilinear", padding_mode="reflection", align_corners=False))
        for a, b in zip(ours, native):
            torch.testing.assert_close(a, b)
