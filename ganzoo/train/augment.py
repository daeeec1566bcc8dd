"""ADA: the differentiable augmentation pipeline and the adaptive augmentation probability.

Karras et al., "Training Generative Adversarial Networks with Limited Data" (NeurIPS 2020)
augment every image the discriminator sees (reals and fakes, in the G and the D passes) with a
fixed chain of transforms, each applied to a sample with probability ``p``. Because the
augmentations are differentiable and leak-free for ``p`` < ~0.8, G learns the clean
distribution; ``p`` is tuned on the fly from an overfitting heuristic.

The pipeline, in the published order:

1. pixel blitting: x-flip, 90° rotations, integer translation (with reflection);
2. general geometric: isotropic scale, arbitrary rotation (before and after), anisotropic
   scale, fractional translation, combined into one affine map per sample and applied once
   with reflection padding and a band-limited (Kaiser-windowed sinc) 2× resampling filter;
3. color: brightness, contrast, luma flip, hue rotation, saturation, combined into one 4×4
   matrix per sample;
4. optional: image-space filtering (random gains of four frequency bands), additive Gaussian
   noise, cutout.

Samples that no transform of a stage selected skip that stage entirely, so ``p = 0`` returns the
input bit for bit, and resampling costs time only for the samples that need it. Random numbers
are drawn on the CPU from an explicit :class:`torch.Generator`, always the same number of them
for a batch size, so the same seed gives the same augmentations on any device.

The code is ganzoo's own; the transform definitions and their default strengths are those of
the paper (Appendix B).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import GanzooError
from ganzoo import ops

# Transform name -> its strength multiplier in each preset ('b' blit, 'g' geometric, 'c' color,
# 'f' filter, 'n' noise, 'c' cutout: the paper's naming).
_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
PRESETS: dict[str, dict[str, float]] = {
    "blit": dict(_BLIT),
    "geom": dict(_GEOM),
    "color": dict(_COLOR),
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1, "cutout": 1},
}
TRANSFORMS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
              "brightness", "contrast", "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout")  # fmt: skip

# Expected power of the four filter bands for natural images (roughly a 1/f spectrum): the
# random band gains are normalized so that the expected image power is unchanged.
_BAND_EXPECTED_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)
_BAND_EDGES = (0.0, 1 / 16, 1 / 8, 1 / 4, 0.5 + 1e-6)  # cycles per pixel


def resampling_taps(num_taps: int = 12, beta: float = 6.0) -> np.ndarray:
    """1-D low-pass taps for 2× up/down-sampling: a sinc with cutoff at the original Nyquist
    frequency (a quarter of the upsampled rate), Kaiser-windowed to ``num_taps`` taps."""
    n = np.arange(num_taps) - (num_taps - 1) / 2
    taps = np.sinc(n / 2) * np.kaiser(num_taps, beta)
    return taps / taps.sum()


def _rotation_2d(theta: torch.Tensor) -> torch.Tensor:
    """[N] angles -> [N, 3, 3] homogeneous rotation matrices."""
    c, s = theta.cos(), theta.sin()
    z, o = torch.zeros_like(theta), torch.ones_like(theta)
    return torch.stack([c, -s, z, s, c, z, z, z, o], dim=1).reshape(-1, 3, 3)


def _scale_2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    z, o = torch.zeros_like(sx), torch.ones_like(sx)
    return torch.stack([sx, z, z, z, sy, z, z, z, o], dim=1).reshape(-1, 3, 3)


def _translate_2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    z, o = torch.zeros_like(tx), torch.ones_like(tx)
    return torch.stack([o, z, tx, z, o, ty, z, z, o], dim=1).reshape(-1, 3, 3)


def _where_matrix(gate: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Per sample: ``m`` where the gate fired, else the identity."""
    eye = torch.eye(m.shape[-1], dtype=m.dtype).expand_as(m)
    return torch.where(gate.reshape(-1, 1, 1), m, eye)


def _apply_to(images: torch.Tensor, mask: torch.Tensor, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Returns ``images`` with ``fn(images[idx], idx)`` written to the samples in ``mask``
    (out of place, so gradients flow to both the transformed and the untouched samples)."""
    if not bool(mask.any()):
        return images
    idx = mask.nonzero().squeeze(1)
    if len(idx) == images.shape[0]:
        return fn(images, idx)
    idx_dev = idx.to(images.device)
    return images.index_copy(0, idx_dev, fn(images.index_select(0, idx_dev), idx))


class AugmentPipe(nn.Module):
    """The ADA augmentation pipeline; ``p`` (a buffer) is the probability of each transform.

    Args:
        xflip, rotate90, xint, scale, rotate, aniso, xfrac, brightness, contrast, lumaflip,
            hue, saturation, imgfilter, noise, cutout: strength multipliers of the transforms
            (0 = off, 1 = applied with probability ``p``).
        xint_max: range of integer translation, as a fraction of the image size.
        scale_std: log2 standard deviation of isotropic scaling.
        rotate_max: range of arbitrary rotation, 1 = full circle.
        aniso_std: log2 standard deviation of anisotropic scaling.
        xfrac_std: standard deviation of fractional translation, as a fraction of the size.
        brightness_std: standard deviation of the brightness offset.
        contrast_std: log2 standard deviation of the contrast scale.
        hue_max: range of hue rotation, 1 = full circle.
        saturation_std: log2 standard deviation of the saturation scale.
        imgfilter_bands: which of the four frequency bands get random gains.
        imgfilter_std: log2 standard deviation of the band gains.
        noise_std: standard deviation of the additive-noise strength.
        cutout_size: side of the cutout square, as a fraction of the size.

    Attributes:
        last_fired: after each call, transform name -> ``[N]`` bool tensor, which samples the
            transform was selected for (diagnostics and tests).
    """

    def __init__(
        self,
        xflip: float = 0, rotate90: float = 0, xint: float = 0,
        scale: float = 0, rotate: float = 0, aniso: float = 0, xfrac: float = 0,
        brightness: float = 0, contrast: float = 0, lumaflip: float = 0, hue: float = 0, saturation: float = 0,
        imgfilter: float = 0, noise: float = 0, cutout: float = 0,
        xint_max: float = 0.125, scale_std: float = 0.2, rotate_max: float = 1, aniso_std: float = 0.2,
        xfrac_std: float = 0.125, brightness_std: float = 0.2, contrast_std: float = 0.5, hue_max: float = 1,
        saturation_std: float = 1, imgfilter_bands: tuple = (1, 1, 1, 1), imgfilter_std: float = 1,
        noise_std: float = 0.1, cutout_size: float = 0.5,
    ):  # fmt: skip
        super().__init__()
        self.strength = dict(
            xflip=float(xflip), rotate90=float(rotate90), xint=float(xint), scale=float(scale),
            rotate=float(rotate), aniso=float(aniso), xfrac=float(xfrac), brightness=float(brightness),
            contrast=float(contrast), lumaflip=float(lumaflip), hue=float(hue), saturation=float(saturation),
            imgfilter=float(imgfilter), noise=float(noise), cutout=float(cutout),
        )  # fmt: skip
        self.xint_max = xint_max
        self.scale_std = scale_std
        self.rotate_max = rotate_max
        self.aniso_std = aniso_std
        self.xfrac_std = xfrac_std
        self.brightness_std = brightness_std
        self.contrast_std = contrast_std
        self.hue_max = hue_max
        self.saturation_std = saturation_std
        self.imgfilter_bands = tuple(float(b) for b in imgfilter_bands)
        self.imgfilter_std = imgfilter_std
        self.noise_std = noise_std
        self.cutout_size = cutout_size
        self.register_buffer("p", torch.zeros([]))
        self.register_buffer("resample_filter", ops.setup_filter(resampling_taps()), persistent=False)
        self.last_fired: dict[str, torch.Tensor] = {}

    @classmethod
    def from_preset(cls, preset: str, **overrides: float) -> "AugmentPipe":
        """Builds the pipeline of a named preset (``'bgc'``, ``'bgcfnc'``, ...)."""
        if preset not in PRESETS:
            raise GanzooError(f"unknown augmentation preset {preset!r}; choose from {', '.join(PRESETS)}")
        return cls(**{**PRESETS[preset], **overrides})

    def extra_repr(self) -> str:
        on = [name for name, s in self.strength.items() if s > 0]
        return f"p={float(self.p):.4f}, transforms={','.join(on)}"

    # ------------------------------------------------------------------------------------------

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augments a batch ``[N, C, H, W]`` (values nominally in [-1, 1]).

        Args:
            images: the batch; square images, 1 or 3 channels for the color transforms.
            generator: CPU random generator for every random choice (None: the global one).

        Returns:
            The augmented batch, same shape and dtype; differentiable w.r.t. ``images``.
        """
        if images.ndim != 4:
            raise ValueError(f"AugmentPipe expects [N, C, H, W], got {list(images.shape)}")
        n, channels, height, width = images.shape
        p = float(self.p)
        self.last_fired = {}
        if p <= 0:
            return images  # the identity, bit for bit, and no random numbers spent

        def gate(name: str, prob: float | None = None) -> torch.Tensor:
            prob = p * self.strength[name] if prob is None else prob
            draw = torch.rand([n], generator=generator)  # drawn even when off: a stable stream
            return draw < prob

        def rand(*shape: int) -> torch.Tensor:
            return torch.rand([n, *shape], generator=generator)

        def randn(*shape: int) -> torch.Tensor:
            return torch.randn([n, *shape], generator=generator)

        # 1. Pixel blitting: exact pixel moves, no resampling.
        g_xflip, flip = gate("xflip"), rand() < 0.5
        g_rot90, quarter_turns = gate("rotate90"), torch.floor(rand() * 4).long()
        g_xint, shift = gate("xint"), (rand(2) * 2 - 1) * self.xint_max
        self.last_fired.update(xflip=g_xflip, rotate90=g_rot90, xint=g_xint)
        images = _apply_to(images, g_xflip & flip, lambda x, idx: x.flip(3))
        if height == width:
            for k in (1, 2, 3):
                images = _apply_to(images, g_rot90 & (quarter_turns == k), lambda x, idx, k=k: torch.rot90(x, k, dims=(2, 3)))
        elif self.strength["rotate90"] > 0:
            raise GanzooError("rotate90 augmentation needs square images")
        pixels = torch.stack([torch.round(shift[:, 0] * width), torch.round(shift[:, 1] * height)], dim=1).long()
        images = _apply_to(images, g_xint & (pixels != 0).any(dim=1), lambda x, idx: _integer_translate(x, pixels[idx]))

        # 2. General geometric transforms, composed into one inverse affine map per sample
        # (output pixel -> input pixel, centered pixel coordinates).
        g_inv = torch.eye(3).repeat(n, 1, 1)
        g_scale, s = gate("scale"), torch.exp2(randn() * self.scale_std)
        g_inv = g_inv @ _where_matrix(g_scale, _scale_2d(1 / s, 1 / s))
        # Rotation is applied twice (around the anisotropic scaling), each with the probability
        # that makes "at least one" happen with probability p.
        p_rot = 1 - math.sqrt(max(1 - p * self.strength["rotate"], 0))
        g_rot_pre, theta = gate("rotate", p_rot), (rand() * 2 - 1) * math.pi * self.rotate_max
        g_inv = g_inv @ _where_matrix(g_rot_pre, _rotation_2d(-theta))
        g_aniso, s = gate("aniso"), torch.exp2(randn() * self.aniso_std)
        g_inv = g_inv @ _where_matrix(g_aniso, _scale_2d(1 / s, s))
        g_rot_post, theta = gate("rotate", p_rot), (rand() * 2 - 1) * math.pi * self.rotate_max
        g_inv = g_inv @ _where_matrix(g_rot_post, _rotation_2d(-theta))
        g_xfrac, t = gate("xfrac"), randn(2) * self.xfrac_std
        g_inv = g_inv @ _where_matrix(g_xfrac, _translate_2d(-t[:, 0] * width, -t[:, 1] * height))
        self.last_fired.update(scale=g_scale, rotate=g_rot_pre | g_rot_post, aniso=g_aniso, xfrac=g_xfrac)
        geometric = g_scale | g_rot_pre | g_rot_post | g_aniso | g_xfrac
        images = _apply_to(images, geometric, lambda x, idx: _resample_affine(x, g_inv[idx], self.resample_filter))

        # 3. Color transforms, composed into one 4x4 matrix per sample acting on (r, g, b, 1).
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3)
        luma_outer = torch.outer(luma, luma)
        eye4 = torch.eye(4)
        color = eye4.repeat(n, 1, 1)
        g_bright, b = gate("brightness"), randn() * self.brightness_std
        m = eye4.repeat(n, 1, 1)
        m[:, :3, 3] = b[:, None]
        color = _where_matrix(g_bright, m) @ color
        g_contrast, c = gate("contrast"), torch.exp2(randn() * self.contrast_std)
        m = torch.diag_embed(torch.stack([c, c, c, torch.ones_like(c)], dim=1))
        color = _where_matrix(g_contrast, m) @ color
        g_lumaflip, flip_luma = gate("lumaflip"), (rand() < 0.5).float()
        m = eye4 - 2 * luma_outer * flip_luma.reshape(-1, 1, 1)
        color = _where_matrix(g_lumaflip, m) @ color
        g_hue, theta = gate("hue"), (rand() * 2 - 1) * math.pi * self.hue_max
        color = _where_matrix(g_hue, _rotation_about_luma(theta, luma[:3])) @ color
        g_sat, s = gate("saturation"), torch.exp2(randn() * self.saturation_std)
        m = luma_outer + (eye4 - luma_outer) * s.reshape(-1, 1, 1)
        color = _where_matrix(g_sat, m) @ color
        self.last_fired.update(brightness=g_bright, contrast=g_contrast, lumaflip=g_lumaflip, hue=g_hue, saturation=g_sat)
        any_color = g_bright | g_contrast | g_lumaflip | g_hue | g_sat
        if channels not in (1, 3) and bool(any_color.any()):
            raise GanzooError(f"color augmentations need 1 or 3 channels, not {channels}")
        images = _apply_to(images, any_color, lambda x, idx: _apply_color(x, color[idx]))

        # 4. Image-space filtering, additive noise, cutout.
        g_filter, band_gains = gate("imgfilter"), torch.exp2(randn(4) * self.imgfilter_std)
        band_gains = torch.where(torch.tensor(self.imgfilter_bands) > 0, band_gains, torch.ones_like(band_gains))
        power = torch.tensor(_BAND_EXPECTED_POWER)
        band_gains = band_gains / (band_gains.square() * power).sum(dim=1, keepdim=True).sqrt()
        images = _apply_to(images, g_filter, lambda x, idx: _filter_bands(x, band_gains[idx]))
        g_noise, sigma = gate("noise"), (randn() * self.noise_std).abs()
        noise_seed = torch.randint(0, 2**62, [n], generator=generator)
        images = _apply_to(images, g_noise, lambda x, idx: x + _seeded_normal(x, noise_seed[idx]) * sigma[idx].to(x.device, x.dtype).reshape(-1, 1, 1, 1))
        g_cutout, center = gate("cutout"), rand(2)
        images = _apply_to(images, g_cutout, lambda x, idx: x * _cutout_mask(x, center[idx], self.cutout_size))
        self.last_fired.update(imgfilter=g_filter, noise=g_noise, cutout=g_cutout)
        return images


# ----------------------------------------------------------------------------------------------
# The transforms, on the selected samples


def _reflect_index(idx: torch.Tensor, size: int) -> torch.Tensor:
    """Mirrors indices into ``[0, size)`` (reflection without repeating the edge pixel)."""
    period = 2 * (size - 1)
    idx = idx.remainder(period) if period > 0 else torch.zeros_like(idx)
    return torch.where(idx >= size, period - idx, idx)


def _integer_translate(x: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Shifts each image by whole pixels ``[n, 2]`` (x, y), filling from the reflected image."""
    n, _, height, width = x.shape
    rows = _reflect_index(torch.arange(height)[None, :] - pixels[:, 1:2], height).to(x.device)  # [nH]
    cols = _reflect_index(torch.arange(width)[None, :] - pixels[:, 0:1], width).to(x.device)  # [nW]
    x = x.gather(2, rows[:, None, :, None].expand(n, x.shape[1], height, width))
    return x.gather(3, cols[:, None, None, :].expand(n, x.shape[1], height, width))


# aten enums of grid_sampler_2d: interpolation 0 = bilinear; padding 2 = reflection.
_BILINEAR, _REFLECTION = 0, 2


class _GridSample(torch.autograd.Function):
    """Bilinear ``grid_sample`` (reflection padding, align_corners=False) whose backward is
    itself differentiable: R1 differentiates D's input gradient, which passes back through the
    augmentation, and CUDA's ``grid_sampler_2d_backward`` has no derivative. The grid is a
    constant (the augmentation parameters are not trained)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, grid)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, grid = ctx.saved_tensors
        return _GridSampleInputGrad.apply(grad_out, x, grid), None


class _GridSampleInputGrad(torch.autograd.Function):
    """The input gradient of :class:`_GridSample`, a linear map of ``grad_out`` whose adjoint is
    the sampling itself (so its backward is one more forward sample)."""

    @staticmethod
    def forward(ctx, grad_out: torch.Tensor, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(grid)
        grad_x, _ = torch.ops.aten.grid_sampler_2d_backward(grad_out, x, grid, _BILINEAR, _REFLECTION, False, [True, False])
        return grad_x

    @staticmethod
    def backward(ctx, grad2: torch.Tensor):
        (grid,) = ctx.saved_tensors
        return _GridSample.apply(grad2, grid), None, None


def grid_sample_reflect(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``F.grid_sample(x, grid, 'bilinear', 'reflection', align_corners=False)``, twice
    differentiable in ``x`` on every device (see :class:`_GridSample`)."""
    return _GridSample.apply(x, grid)


def _resample_affine(x: torch.Tensor, g_inv: torch.Tensor, resample_filter: torch.Tensor) -> torch.Tensor:
    """Applies per-sample inverse affine maps ``[n, 3, 3]`` (centered pixel coordinates).

    The image is reflection-padded far enough to cover every source position, upsampled 2×
    with the band-limited filter, sampled bilinearly on a 2× output grid (with a margin), and
    low-pass downsampled back, which keeps aliasing of rotations and scalings small.
    """
    n, channels, height, width = x.shape
    dtype, device = x.dtype, x.device
    taps = resample_filter.shape[0]
    extra = taps  # 2x output pixels computed beyond each border, cropped after the low-pass
    # Output positions on the 2x grid, in centered 1x pixel coordinates.
    gx = (torch.arange(-extra, 2 * width + extra, dtype=torch.float64) + 0.5) / 2 - width / 2
    gy = (torch.arange(-extra, 2 * height + extra, dtype=torch.float64) + 0.5) / 2 - height / 2
    grid_y, grid_x = torch.meshgrid(gy, gx, indexing="ij")
    coords = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], dim=-1)  # [H'W'3]
    src = torch.einsum("nij,hwj->nhwi", g_inv.to(torch.float64), coords)[..., :2]  # [nH'W'2]

    # Padding (the same for the batch) so every source position and the filter support lie
    # inside real, reflected image content.
    support = taps / 4 + 1
    lo = src.amin(dim=(0, 1, 2)) + torch.tensor([width / 2, height / 2], dtype=torch.float64) - support
    hi = src.amax(dim=(0, 1, 2)) + torch.tensor([width / 2, height / 2], dtype=torch.float64) + support
    pad_l = int(min(max(math.ceil(-lo[0].item()), 0), width - 1))
    pad_r = int(min(max(math.ceil(hi[0].item() - width), 0), width - 1))
    pad_t = int(min(max(math.ceil(-lo[1].item()), 0), height - 1))
    pad_b = int(min(max(math.ceil(hi[1].item() - height), 0), height - 1))
    if pad_l or pad_r or pad_t or pad_b:
        x = F.pad(x, [pad_l, pad_r, pad_t, pad_b], mode="reflect")
    padded_w, padded_h = width + pad_l + pad_r, height + pad_t + pad_b
    x = ops.upsample2d(x, resample_filter)

    # Normalized grid_sample coordinates (align_corners=False: -1 and 1 are the outer edges).
    norm_x = (src[..., 0] + width / 2 + pad_l) / padded_w * 2 - 1
    norm_y = (src[..., 1] + height / 2 + pad_t) / padded_h * 2 - 1
    grid = torch.stack([norm_x, norm_y], dim=-1).to(device=device, dtype=dtype)
    x = grid_sample_reflect(x, grid)
    x = ops.downsample2d(x, resample_filter)
    crop = extra // 2
    return x[:, :, crop : crop + height, crop : crop + width]


def _rotation_about_luma(theta: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """[N] angles -> [N, 4, 4] rotations of (r, g, b) about the unit ``axis`` (Rodrigues)."""
    ax, ay, az = axis.tolist()
    cross = torch.tensor([[0.0, -az, ay], [az, 0.0, -ax], [-ay, ax, 0.0]])
    outer = torch.outer(axis, axis)
    c = theta.cos().reshape(-1, 1, 1)
    s = theta.sin().reshape(-1, 1, 1)
    rot = c * torch.eye(3) + s * cross + (1 - c) * outer
    m = torch.eye(4).repeat(len(theta), 1, 1)
    m[:, :3, :3] = rot
    return m


def _apply_color(x: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
    """Applies 4x4 color matrices ``[n, 4, 4]`` to RGB (or, averaged, to grayscale) images."""
    n, channels, height, width = x.shape
    color = color.to(device=x.device, dtype=x.dtype)
    if channels == 3:
        flat = x.reshape(n, 3, height * width)
        return (color[:, :3, :3] @ flat + color[:, :3, 3:]).reshape(n, 3, height, width)
    gain = color[:, :3, :3].mean(dim=(1, 2)).reshape(n, 1, 1, 1)
    offset = color[:, :3, 3].mean(dim=1).reshape(n, 1, 1, 1)
    return x * gain + offset


def _band_response(size: int, gains: torch.Tensor) -> torch.Tensor:
    """Per-sample 1-D frequency response ``[n, size]`` (FFT order) with one gain per band."""
    freq = torch.fft.fftfreq(size).abs()  # cycles per pixel, in [0, 0.5]
    band = torch.bucketize(freq, torch.tensor(_BAND_EDGES[1:-1]), right=True)  # [size] in 0..3
    return gains[:, band]


def _filter_bands(x: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Scales four frequency bands of each image by ``gains [n, 4]`` (separable, via the FFT)."""
    n, _, height, width = x.shape
    response_y = _band_response(height, gains).to(x.device)
    response_x = _band_response(width, gains).to(x.device)
    response = response_y[:, None, :, None] * response_x[:, None, None, :]
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()  # no half-precision FFTs
    spectrum = torch.fft.fft2(work)
    return torch.fft.ifft2(spectrum * response.to(work.dtype)).real.to(x.dtype)


def _seeded_normal(x: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, each sample from its own CPU seed (so the noise
    does not depend on which samples share the batch)."""
    noise = []
    for seed in seeds.tolist():
        gen = torch.Generator().manual_seed(int(seed))
        noise.append(torch.randn(x.shape[1:], generator=gen))
    return torch.stack(noise).to(device=x.device, dtype=x.dtype)


def _cutout_mask(x: torch.Tensor, center: torch.Tensor, size: float) -> torch.Tensor:
    """Zero inside a square of side ``size`` (fraction of the image) around each center."""
    n, _, height, width = x.shape
    ys = ((torch.arange(height) + 0.5) / height).reshape(1, height, 1)
    xs = ((torch.arange(width) + 0.5) / width).reshape(1, 1, width)
    outside = ((xs - center[:, 0].reshape(-1, 1, 1)).abs() >= size / 2) | (
        (ys - center[:, 1].reshape(-1, 1, 1)).abs() >= size / 2
    )
    return outside[:, None].to(device=x.device, dtype=x.dtype)


# ----------------------------------------------------------------------------------------------
# The adaptive probability


class AdaptiveP:
    """The ADA controller: raises ``p`` when D overfits the reals, lowers it when it does not.

    The overfitting heuristic is ``r_t = E[sign(D(x_real))]`` over the last ``interval``
    minibatches; every ``interval`` minibatches ``p`` moves by
    ``sign(r_t - target) * batch_size * interval / (speed_kimg * 1000)``, i.e. fast enough to
    go from 0 to 1 in ``speed_kimg`` thousand images, and is clamped at 0.

    Args:
        target: the value of ``r_t`` to hold (0.6 in the paper).
        interval: minibatches between adjustments (4).
        speed_kimg: thousands of images for ``p`` to move by 1 (500).
        p: the initial probability.
    """

    def __init__(self, target: float = 0.6, interval: int = 4, speed_kimg: float = 500, p: float = 0.0):
        self.target = float(target)
        self.interval = int(interval)
        self.speed_kimg = float(speed_kimg)
        self.p = float(p)
        self.sign_sum = 0.0
        self.sign_count = 0
        self.last_rt: float | None = None

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Adds a batch of the discriminator's logits on (augmented) reals."""
        signs = real_logits.detach().float().sign()
        self.sign_sum += float(signs.sum())
        self.sign_count += int(signs.numel())

    def step(self, batch_idx: int, batch_size: int, all_reduce: Callable[[list[float]], list[float]] | None = None) -> None:
        """Called after each minibatch (``batch_idx`` counts from 1): adjusts ``p`` every
        ``interval`` minibatches.

        Args:
            batch_idx: minibatches done so far, this one included.
            batch_size: images per minibatch (global, over all processes).
            all_reduce: sums ``[sign_sum, sign_count]`` over processes (DDP), or None.
        """
        if batch_idx % self.interval != 0:
            return
        totals = [self.sign_sum, float(self.sign_count)]
        if all_reduce is not None:
            totals = all_reduce(totals)
        self.sign_sum, self.sign_count = 0.0, 0
        if totals[1] <= 0:
            return
        self.last_rt = totals[0] / totals[1]
        adjust = np.sign(self.last_rt - self.target) * batch_size * self.interval / (self.speed_kimg * 1000)
        self.p = max(self.p + float(adjust), 0.0)

    def state(self) -> dict[str, float]:
        """What exact resume needs."""
        return {"p": self.p, "sign_sum": self.sign_sum, "sign_count": float(self.sign_count),
                "last_rt": float("nan") if self.last_rt is None else self.last_rt}  # fmt: skip

    def load_state(self, state: dict[str, float]) -> None:
        self.p = float(state["p"])
        self.sign_sum = float(state["sign_sum"])
        self.sign_count = int(state["sign_count"])
        self.last_rt = None if math.isnan(state["last_rt"]) else float(state["last_rt"])
