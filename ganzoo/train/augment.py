"""ADA: the differentiable augmentation pipeline and the adaptive augmentation probability.

Karras et al., "Training Generative Adversarial Networks with Limited Data" (NeurIPS 2020)
augment every image the discriminator sees (reals and fakes, in the G and the D passes) with a
fixed chain of transforms, each applied to a sample with probability ``p``. Because the
augmentations are differentiable and leak-free for ``p`` < ~0.8, G learns the clean
distribution; ``p`` is tuned on the fly from an overfitting heuristic.

The pipeline, in the published order:

1. pixel blitting: x-flip, 90° rotations, integer translation;
2. general geometric: isotropic scale, arbitrary rotation (before and after), anisotropic
   scale, fractional translation. Blits and these compose into one inverse affine map per
   sample, applied once: reflection padding, 2× upsampling with the sym6 wavelet low-pass,
   bilinear sampling, and sym6 downsampling;
3. color: brightness, contrast, luma flip, hue rotation, saturation, combined into one 4×4
   matrix per sample;
4. optional: image-space filtering (random gains of four octave bands built from the sym2
   wavelet), additive Gaussian noise, cutout.

Each stage matches stylegan2-ada-pytorch's ``training/augment.py`` to float rounding: in the
percentile mode (``forward(..., percentile=q)``) the reference fixture
``stylegan2-ada/augment32`` is reproduced to ~1e-5 in values and input gradients
(``tests/test_augment.py``). Samples that no transform of a stage selected skip that stage
(the reference sends them through it as an identity), so ``p = 0`` returns the input bit for
bit and resampling costs time only for samples that need it. Random numbers are drawn on the
CPU from an explicit :class:`torch.Generator`, always the same number of them for a batch
size, so the same seed gives the same augmentations on any device.

The code is ganzoo's own; the transform definitions and their default strengths are those of
the paper (Appendix B), the filters and conventions those of the reference implementation.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import GanzooError

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

# Orthonormal wavelet low-pass filters (Daubechies' least-asymmetric "symlets"; coefficient sums
# are sqrt(2)). sym2 is Daubechies' 4-tap filter, given in closed form; sym6 has 12 taps.
_SQRT3 = math.sqrt(3.0)
SYM2 = tuple(v / (4 * math.sqrt(2.0)) for v in (1 - _SQRT3, 3 - _SQRT3, 3 + _SQRT3, 1 + _SQRT3))
SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)  # fmt: skip

# Expected power of the four filter bands for natural images (a 1/f spectrum): each band gain
# is normalized so that the expected image power stays the same.
_BAND_EXPECTED_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)


def band_filters(wavelet: Sequence[float] = SYM2, bands: int = 4) -> np.ndarray:
    """The image-space filter bank: ``[bands, taps]`` symmetric 1-D filters, one octave each,
    lowest band first, that sum to a unit impulse.

    With ``h`` an orthonormal low-pass, ``L(z) = h(z) h(1/z) / 2`` and ``H(z) = L(-z)`` are
    zero-phase half-band filters with ``L + H = 1`` (power complementarity). Splitting the low
    half again and again gives octave bands ``H(z)``, ``H(z^2) L(z)``, ``H(z^4) L(z^2) L(z)``,
    ..., and the remaining low band ``L(z^(2^(bands-2))) ... L(z)``; their sum telescopes to 1,
    so gains of 1 leave an image unchanged and no band shifts it.
    """
    h = np.asarray(wavelet, dtype=np.float64)
    low = np.convolve(h, h[::-1]) / 2
    high = low * (-1.0) ** (np.arange(low.size) - low.size // 2)

    def dilate(taps: np.ndarray, factor: int) -> np.ndarray:  # taps(z) -> taps(z ** factor)
        out = np.zeros((taps.size - 1) * factor + 1)
        out[::factor] = taps
        return out

    rows, lows = [], np.ones(1)  # lows: the product of the low-passes below the current octave
    for octave in range(bands - 1):
        factor = 2**octave
        rows.append(np.convolve(dilate(high, factor), lows))
        lows = np.convolve(dilate(low, factor), lows)
    rows.append(lows)
    rows = rows[::-1]
    width = max(r.size for r in rows)
    bank = np.zeros([bands, width])
    for i, r in enumerate(rows):
        start = (width - r.size) // 2
        bank[i, start : start + r.size] = r
    return bank


class _Parameters:
    """The random parameters of one batch: drawn from a CPU generator, or, in percentile mode,
    every one set to the value at percentile ``q`` of its distribution, for every sample.

    Percentile mode follows stylegan2-ada-pytorch's ``debug_percentile`` convention, which the
    reference fixtures were made with: an index in ``range(k)`` is ``floor(q k)``, a uniform
    ``(2q - 1) max``, a Gaussian ``erfinv(2q - 1) std``, a half-Gaussian ``erfinv(q) std`` and a
    unit-interval value ``q``. (For a Gaussian this is the ``Φ(√2 x)`` percentile, not the exact
    quantile ``√2 erfinv(2q - 1) std``; kept for comparability.) Every transform with a nonzero
    strength then applies to every sample, whatever ``p``.

    In random mode each call draws the same count of numbers whatever the outcome, so the stream
    does not depend on which transforms fired.
    """

    def __init__(self, n: int, p: float, generator: torch.Generator | None, percentile: float | None):
        self.n, self.p, self.generator = n, p, generator
        self.q = None if percentile is None else float(percentile)
        if self.q is not None and not 0 <= self.q <= 1:
            raise ValueError(f"percentile must lie in [0, 1], not {percentile}")

    def _erfinv(self, x: float) -> float:
        return float(torch.erfinv(torch.tensor(x, dtype=torch.float64)))

    def fires(self, probability: float) -> torch.Tensor:
        draw = torch.rand([self.n], generator=self.generator)
        if self.q is not None:
            return torch.ones([self.n], dtype=torch.bool)  # the caller masks off disabled transforms
        return draw < probability

    def index(self, count: int) -> torch.Tensor:
        draw = torch.rand([self.n], generator=self.generator)
        value = draw if self.q is None else torch.full([self.n], self.q)
        return torch.floor(value * count).clamp(max=count - 1)

    def uniform(self, limit: float, *shape: int) -> torch.Tensor:
        draw = torch.rand([self.n, *shape], generator=self.generator)
        value = draw if self.q is None else torch.full_like(draw, self.q)
        return (value * 2 - 1) * limit

    def normal(self, std: float, *shape: int) -> torch.Tensor:
        draw = torch.randn([self.n, *shape], generator=self.generator)
        if self.q is not None:
            draw = torch.full_like(draw, self._erfinv(2 * self.q - 1))
        return draw * std

    def half_normal(self, std: float) -> torch.Tensor:
        draw = torch.randn([self.n], generator=self.generator).abs()
        if self.q is not None:
            draw = torch.full_like(draw, self._erfinv(self.q))
        return draw * std

    def seeds(self) -> torch.Tensor:
        """One 62-bit seed per sample (random in both modes)."""
        return torch.randint(0, 2**62, [self.n], generator=self.generator)

    def unit(self, *shape: int) -> torch.Tensor:
        draw = torch.rand([self.n, *shape], generator=self.generator)
        return draw if self.q is None else torch.full_like(draw, self.q)


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
        imgfilter_bands: strength of the random gain of each of the four frequency bands.
        imgfilter_std: log2 standard deviation of the band gains.
        noise_std: standard deviation of the additive-noise strength.
        cutout_size: side of the cutout square, as a fraction of the size.

    Attributes:
        last_fired: after each call, transform name -> ``[N]`` bool tensor, which samples the
            transform was selected for (diagnostics and tests; ``imgfilter``: any band).
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
        if len(self.imgfilter_bands) != len(_BAND_EXPECTED_POWER):
            raise ValueError(f"imgfilter_bands needs {len(_BAND_EXPECTED_POWER)} values, not {len(self.imgfilter_bands)}")
        self.imgfilter_std = imgfilter_std
        self.noise_std = noise_std
        self.cutout_size = cutout_size
        self.register_buffer("p", torch.zeros([]))
        # The geometric stage's 2x resampling filter (sym6: orthonormal, so downsampling undoes
        # upsampling and whole-pixel moves stay exact) and the image-space band filters (sym2).
        self.register_buffer("resample_taps", torch.tensor(SYM6, dtype=torch.float32) / sum(SYM6), persistent=False)
        self.register_buffer("band_bank", torch.tensor(band_filters(SYM2), dtype=torch.float32), persistent=False)
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

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None,
                percentile: float | None = None) -> torch.Tensor:  # fmt: skip
        """Augments a batch ``[N, C, H, W]`` (values nominally in [-1, 1]).

        Args:
            images: the batch; 1 or 3 channels for the color transforms, square for rotate90.
            generator: CPU random generator for every random choice (None: the global one).
            percentile: None for random augmentation; a value ``q`` in [0, 1] applies every
                enabled transform to every sample with its parameters at percentile ``q``
                (see :class:`_Parameters`), whatever ``p``: a deterministic mode for comparing
                with the reference pipeline. The noise pattern stays random.

        Returns:
            The augmented batch, same shape and dtype; differentiable w.r.t. ``images``.
        """
        if images.ndim != 4:
            raise ValueError(f"AugmentPipe expects [N, C, H, W], got {list(images.shape)}")
        n, channels, height, width = images.shape
        p = float(self.p)
        self.last_fired = {}
        if p <= 0 and percentile is None:
            return images  # the identity, bit for bit, and no random numbers spent
        draw = _Parameters(n, p, generator, percentile)
        images = self._geometric(images, draw)
        images = self._color(images, draw)
        images = self._filter(images, draw)
        return self._noise_and_cutout(images, draw)

    def _gate(self, draw: "_Parameters", name: str, probability: float | None = None) -> torch.Tensor:
        """Which samples transform ``name`` is applied to (probability ``p`` x its strength by
        default); none when the transform is off."""
        strength = self.strength[name]
        return draw.fires(draw.p * strength if probability is None else probability) & (strength > 0)

    def _geometric(self, images: torch.Tensor, draw: "_Parameters") -> torch.Tensor:
        """Stages 1-2: blits and general geometric transforms, composed into one inverse map per
        sample (output pixel -> input pixel, pixel units, origin at the image centre)."""
        n, _, height, width = images.shape
        gate = functools.partial(self._gate, draw)
        inverse = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)

        def then(fired: torch.Tensor, m: torch.Tensor) -> None:
            nonlocal inverse
            inverse = inverse @ _where_matrix(fired, m.to(torch.float64))

        g_xflip, flip = gate("xflip"), draw.index(2)
        then(g_xflip, _scale_2d(1 - 2 * flip, torch.ones(n)))
        g_rot90, quarter_turns = gate("rotate90"), draw.index(4)
        then(g_rot90, _rotation_2d(quarter_turns.double() * (math.pi / 2)))
        g_xint, shift = gate("xint"), draw.uniform(self.xint_max, 2)
        then(g_xint, _translate_2d(-torch.round(shift[:, 0] * width), -torch.round(shift[:, 1] * height)))
        if self.strength["rotate90"] > 0 and height != width:
            raise GanzooError("rotate90 augmentation needs square images")
        g_scale, s = gate("scale"), torch.exp2(draw.normal(self.scale_std))
        then(g_scale, _scale_2d(1 / s, 1 / s))
        # Rotation is applied twice (around the anisotropic scaling), each with the probability
        # that makes "at least one" happen with probability p; percentile mode rotates once.
        p_rot = 1 - math.sqrt(min(max(1 - draw.p * self.strength["rotate"], 0.0), 1.0))
        g_rot_pre, theta = gate("rotate", p_rot), draw.uniform(math.pi * self.rotate_max)
        then(g_rot_pre, _rotation_2d(theta.double()))
        g_aniso, s = gate("aniso"), torch.exp2(draw.normal(self.aniso_std))
        then(g_aniso, _scale_2d(1 / s, s))
        g_rot_post, theta = gate("rotate", p_rot), draw.uniform(math.pi * self.rotate_max)
        if draw.q is not None:
            theta = torch.zeros_like(theta)
        then(g_rot_post, _rotation_2d(theta.double()))
        g_xfrac, t = gate("xfrac"), draw.normal(self.xfrac_std, 2)
        then(g_xfrac, _translate_2d(-t[:, 0] * width, -t[:, 1] * height))
        self.last_fired.update(xflip=g_xflip, rotate90=g_rot90, xint=g_xint, scale=g_scale,
                               rotate=g_rot_pre | g_rot_post, aniso=g_aniso, xfrac=g_xfrac)  # fmt: skip
        # Every sample that moves is resampled, flips and quarter turns included, as in the
        # reference: sym6 is not symmetric, so a mirrored sample is filtered by its
        # autoconvolution instead of its autocorrelation and comes out slightly blurred, not as
        # an exact pixel move. Only whole-pixel shifts (the identity within float rounding in the
        # reference) are gathered directly.
        linear = inverse[:, :2, :2]
        offset = inverse[:, :2, 2]
        unmoved = (linear - torch.eye(2, dtype=torch.float64)).abs().amax(dim=(1, 2)) < 1e-9
        whole = unmoved & ((offset - offset.round()).abs() < 1e-9).all(dim=1)
        shifted = whole & (offset.round() != 0).any(dim=1)
        images = _apply_to(images, shifted, lambda x, idx: _integer_translate(x, offset[idx].round().long()))
        return _apply_to(images, ~whole, lambda x, idx: _resample(x, inverse[idx], self.resample_taps))

    def _color(self, images: torch.Tensor, draw: "_Parameters") -> torch.Tensor:
        """Stage 3: color transforms, composed into one 4x4 matrix per sample on (r, g, b, 1)."""
        n, channels = images.shape[:2]
        gate = functools.partial(self._gate, draw)
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64) / math.sqrt(3)
        luma_outer = torch.outer(luma, luma)
        eye4 = torch.eye(4, dtype=torch.float64)
        color = eye4.repeat(n, 1, 1)

        def after(fired: torch.Tensor, m: torch.Tensor) -> None:
            nonlocal color
            color = _where_matrix(fired, m.to(torch.float64)) @ color

        g_bright, b = gate("brightness"), draw.normal(self.brightness_std).double()
        after(g_bright, _translate_color(b))
        g_contrast, c = gate("contrast"), torch.exp2(draw.normal(self.contrast_std)).double()
        after(g_contrast, torch.diag_embed(torch.stack([c, c, c, torch.ones_like(c)], dim=1)))
        g_lumaflip, flip_luma = gate("lumaflip"), draw.index(2).double()
        after(g_lumaflip, eye4 - 2 * luma_outer * flip_luma.reshape(-1, 1, 1))
        # Hue and saturation act across channels: not on grayscale images.
        g_hue, theta = gate("hue"), draw.uniform(math.pi * self.hue_max).double()
        g_hue &= channels > 1
        after(g_hue, _rotation_about_luma(theta, luma[:3]))
        g_sat, s = gate("saturation"), torch.exp2(draw.normal(self.saturation_std)).double()
        g_sat &= channels > 1
        after(g_sat, luma_outer + (eye4 - luma_outer) * s.reshape(-1, 1, 1))
        self.last_fired.update(brightness=g_bright, contrast=g_contrast, lumaflip=g_lumaflip, hue=g_hue, saturation=g_sat)
        any_color = g_bright | g_contrast | g_lumaflip | g_hue | g_sat
        if channels not in (1, 3) and bool(any_color.any()):
            raise GanzooError(f"color augmentations need 1 or 3 channels, not {channels}")
        return _apply_to(images, any_color, lambda x, idx: _apply_color(x, color[idx]))

    def _filter(self, images: torch.Tensor, draw: "_Parameters") -> torch.Tensor:
        """Stage 4: image-space filtering. Each band's gain is drawn and gated on its own, then
        the gains are normalized one band at a time to keep the expected power."""
        n = images.shape[0]
        power = torch.tensor(_BAND_EXPECTED_POWER, dtype=torch.float64)
        gains = torch.ones([n, len(power)], dtype=torch.float64)
        fired_any = torch.zeros([n], dtype=torch.bool)
        for band, band_strength in enumerate(self.imgfilter_bands):
            strength = self.strength["imgfilter"] * band_strength
            fired = draw.fires(draw.p * strength) & (strength > 0)
            gain = torch.exp2(draw.normal(self.imgfilter_std)).double()
            single = torch.ones_like(gains)
            single[:, band] = torch.where(fired, gain, torch.ones_like(gain))
            gains = gains * single / (single.square() * power).sum(dim=1, keepdim=True).sqrt()
            fired_any |= fired
        self.last_fired["imgfilter"] = fired_any
        return _apply_to(images, fired_any, lambda x, idx: _filter_bands(x, gains[idx], self.band_bank))

    def _noise_and_cutout(self, images: torch.Tensor, draw: "_Parameters") -> torch.Tensor:
        """Stage 5: additive Gaussian noise (each sample's pattern from its own seed) and cutout."""
        g_noise, sigma = self._gate(draw, "noise"), draw.half_normal(self.noise_std)
        noise_seed = draw.seeds()
        images = _apply_to(images, g_noise, lambda x, idx: x + _seeded_normal(x, noise_seed[idx]) * sigma[idx].to(x.device, x.dtype).reshape(-1, 1, 1, 1))
        g_cutout, center = self._gate(draw, "cutout"), draw.unit(2)
        images = _apply_to(images, g_cutout, lambda x, idx: x * _cutout_mask(x, center[idx], self.cutout_size))
        self.last_fired.update(noise=g_noise, cutout=g_cutout)
        return images


# ----------------------------------------------------------------------------------------------
# The transforms, on the selected samples


def _reflect_index(idx: torch.Tensor, size: int) -> torch.Tensor:
    """Mirrors indices into ``[0, size)`` (reflection without repeating the edge pixel)."""
    period = 2 * (size - 1)
    idx = idx.remainder(period) if period > 0 else torch.zeros_like(idx)
    return torch.where(idx >= size, period - idx, idx)


def _integer_translate(x: torch.Tensor, source_offset: torch.Tensor) -> torch.Tensor:
    """Shifts each image by whole pixels: output pixel (i, j) takes input pixel
    ``(i + dy, j + dx)`` for ``source_offset [n, 2] = (dx, dy)``, reflected at the borders."""
    n, channels, height, width = x.shape
    rows = _reflect_index(torch.arange(height)[None, :] + source_offset[:, 1:2], height).to(x.device)  # [nH]
    cols = _reflect_index(torch.arange(width)[None, :] + source_offset[:, 0:1], width).to(x.device)  # [nW]
    x = x.gather(2, rows[:, None, :, None].expand(n, channels, height, width))
    return x.gather(3, cols[:, None, None, :].expand(n, channels, height, width))


# aten enums of grid_sampler_2d: interpolation 0 = bilinear; padding 0 = zeros.
_BILINEAR, _ZEROS = 0, 0


class _GridSample(torch.autograd.Function):
    """Bilinear ``grid_sample`` (zero padding, align_corners=False) whose backward is itself
    differentiable: R1 differentiates D's input gradient, which passes back through the
    augmentation, and CUDA's ``grid_sampler_2d_backward`` has no derivative. The grid is a
    constant (the augmentation parameters are not trained)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, grid)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

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
        grad_x, _ = torch.ops.aten.grid_sampler_2d_backward(grad_out, x, grid, _BILINEAR, _ZEROS, False, [True, False])
        return grad_x

    @staticmethod
    def backward(ctx, grad2: torch.Tensor):
        (grid,) = ctx.saved_tensors
        return _GridSample.apply(grad2, grid), None, None


def grid_sample_zeros(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``F.grid_sample(x, grid, 'bilinear', 'zeros', align_corners=False)``, twice
    differentiable in ``x`` on every device (see :class:`_GridSample`)."""
    return _GridSample.apply(x, grid)


def _fir_axis(x: torch.Tensor, taps: torch.Tensor, dim: int, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0), correlate: bool = False) -> torch.Tensor:  # fmt: skip
    """One separable FIR pass along ``dim`` (2 = rows, 3 = columns) of ``[N, C, H, W]``: stuff
    ``up - 1`` zeros after each sample, pad (negative: crop), filter (a convolution, or a
    correlation), keep every ``down``-th output."""
    n, channels, height, width = x.shape
    if up > 1:
        shape = [n, channels, height * up, width] if dim == 2 else [n, channels, height, width * up]
        stuffed = x.new_zeros(shape)
        if dim == 2:
            stuffed[:, :, ::up] = x
        else:
            stuffed[:, :, :, ::up] = x
        x = stuffed
    lo, hi = pad
    x = F.pad(x, [0, 0, lo, hi] if dim == 2 else [lo, hi, 0, 0])
    kernel = taps.to(x.dtype) if correlate else taps.to(x.dtype).flip(0)
    kernel = kernel.reshape([1, 1, -1, 1] if dim == 2 else [1, 1, 1, -1]).expand(x.shape[1], 1, -1, -1)
    stride = (down, 1) if dim == 2 else (1, down)
    return F.conv2d(x, kernel, stride=stride, groups=x.shape[1])


def _resample(x: torch.Tensor, inverse: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Applies per-sample inverse affine maps ``[n, 3, 3]`` (pixel units, origin at the centre).

    As the reference pipeline does: reflection-pad the batch enough for every sample's source
    area, upsample 2x with the orthonormal low-pass, sample bilinearly (zeros outside) on a 2x
    output grid with a margin of ``len(taps) / 4`` pixels, and low-pass downsample back.
    """
    n, channels, height, width = x.shape
    num_taps = taps.shape[0]
    margin = num_taps // 4
    half_w, half_h = (width - 1) / 2, (height - 1) / 2
    # Padding: where the corners of the output land in the input, plus the filter support.
    corners = torch.tensor([[-half_w, -half_h, 1], [half_w, -half_h, 1], [half_w, half_h, 1], [-half_w, half_h, 1]],
                           dtype=torch.float64).t()  # fmt: skip
    reach = (inverse[:, :2] @ corners).permute(1, 0, 2).reshape(2, -1)  # [xy, n * 4]
    before = (-reach).amax(dim=1) + torch.tensor([2 * margin - half_w, 2 * margin - half_h], dtype=torch.float64)
    after = reach.amax(dim=1) + torch.tensor([2 * margin - half_w, 2 * margin - half_h], dtype=torch.float64)
    limit = torch.tensor([width - 1, height - 1], dtype=torch.float64)
    pad_l, pad_t = [int(v) for v in before.clamp(min=0).minimum(limit).ceil()]
    pad_r, pad_b = [int(v) for v in after.clamp(min=0).minimum(limit).ceil()]
    x = F.pad(x, [pad_l, pad_r, pad_t, pad_b], mode="reflect")
    up_h, up_w = 2 * x.shape[2], 2 * x.shape[3]
    lead = (num_taps + 1) // 2
    x = _fir_axis(x, taps * 2, 2, up=2, pad=(lead, num_taps - 1 - lead))
    x = _fir_axis(x, taps * 2, 3, up=2, pad=(lead, num_taps - 1 - lead))

    # The 2x output grid (``margin`` extra 1x pixels on each side), in 1x units from the centre.
    out_w, out_h = 2 * (width + 2 * margin), 2 * (height + 2 * margin)
    gx = (torch.arange(out_w, dtype=torch.float64) + 1 - out_w / 2) / 2
    gy = (torch.arange(out_h, dtype=torch.float64) + 1 - out_h / 2) / 2
    grid_y, grid_x = torch.meshgrid(gy, gx, indexing="ij")
    points = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)]).reshape(3, -1)
    src = inverse[:, :2] @ points  # [n, 2, HW]
    src = src + torch.tensor([(pad_l - pad_r) / 2, (pad_t - pad_b) / 2], dtype=torch.float64).reshape(1, 2, 1)
    # The upsampled image's centred 2x coordinate of a 1x position u is 2u - 1/2; normalized
    # grid_sample coordinates (align_corners=False) run from -1 to 1 across the whole image.
    norm = (2 * src - 0.5) * torch.tensor([2 / up_w, 2 / up_h], dtype=torch.float64).reshape(1, 2, 1)
    grid = norm.reshape(n, 2, out_h, out_w).permute(0, 2, 3, 1).to(device=x.device, dtype=x.dtype)
    x = grid_sample_zeros(x, grid)
    x = _fir_axis(x, taps, 2, down=2, pad=(-1, -1), correlate=True)
    return _fir_axis(x, taps, 3, down=2, pad=(-1, -1), correlate=True)


def _translate_color(b: torch.Tensor) -> torch.Tensor:
    """[N] offsets -> [N, 4, 4] matrices adding the offset to r, g and b."""
    m = torch.eye(4, dtype=b.dtype).repeat(len(b), 1, 1)
    m[:, :3, 3] = b[:, None]
    return m


def _rotation_about_luma(theta: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """[N] angles -> [N, 4, 4] rotations of (r, g, b) about the unit ``axis`` (Rodrigues)."""
    ax, ay, az = axis.tolist()
    cross = torch.tensor([[0.0, -az, ay], [az, 0.0, -ax], [-ay, ax, 0.0]], dtype=theta.dtype)
    outer = torch.outer(axis, axis).to(theta.dtype)
    c = theta.cos().reshape(-1, 1, 1)
    s = theta.sin().reshape(-1, 1, 1)
    rot = c * torch.eye(3, dtype=theta.dtype) + s * cross + (1 - c) * outer
    m = torch.eye(4, dtype=theta.dtype).repeat(len(theta), 1, 1)
    m[:, :3, :3] = rot
    return m


def _apply_color(x: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
    """Applies 4x4 color matrices ``[n, 4, 4]`` to RGB images; a grayscale image gets the
    matrix's mean row (the gain of a gray input, the mean offset)."""
    n, channels, height, width = x.shape
    color = color.to(device=x.device, dtype=x.dtype)
    if channels == 3:
        flat = x.reshape(n, 3, height * width)
        return (color[:, :3, :3] @ flat + color[:, :3, 3:]).reshape(n, 3, height, width)
    mean_row = color[:, :3, :].mean(dim=1)  # [n, 4]
    gain = mean_row[:, :3].sum(dim=1).reshape(n, 1, 1, 1)
    return x * gain + mean_row[:, 3].reshape(n, 1, 1, 1)


def _filter_bands(x: torch.Tensor, gains: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Filters each image with ``gains [n, bands] @ bank``, separably, reflecting at borders."""
    n, channels, height, width = x.shape
    taps = (gains.to(bank.device, torch.float32) @ bank).to(x.dtype)  # [n, T], symmetric
    half = bank.shape[1] // 2
    rows = _reflect_index(torch.arange(-half, height + half), height).to(x.device)
    cols = _reflect_index(torch.arange(-half, width + half), width).to(x.device)
    x = x.index_select(2, rows).index_select(3, cols)
    x = x.reshape(1, n * channels, height + 2 * half, width + 2 * half)
    kernel = taps.repeat_interleave(channels, dim=0)  # [n*C, T]
    x = F.conv2d(x, kernel[:, None, :, None], groups=n * channels)
    x = F.conv2d(x, kernel[:, None, None, :], groups=n * channels)
    return x.reshape(n, channels, height, width)


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
