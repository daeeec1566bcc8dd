"""Signal-processing building blocks of the alias-free generator, in plain PyTorch.

* :func:`design_lowpass_filter` -- Kaiser-windowed lowpass FIR filters, separable (sinc) or
  radially symmetric (jinc), as described in the StyleGAN3 paper's appendix.
* :func:`upfirdn2d` -- upsample by zero insertion, pad (or crop), FIR filter, downsample.
* :func:`filtered_lrelu` -- the "filtered nonlinearity": bias, upsample, leaky ReLU (with gain and
  clamp) at the higher rate, lowpass and downsample back.

Everything runs through ordinary ``torch.nn.functional`` calls, so it works on any device and in
any dtype, and is differentiable (twice, too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["bias_lrelu", "design_lowpass_filter", "filtered_lrelu", "upfirdn2d"]


def _kaiser_beta_for(numtaps: int, transition_width: float) -> float:
    """Kaiser's empirical formulas: the attenuation (dB) reachable by ``numtaps`` taps over a
    transition band ``transition_width`` (a fraction of the Nyquist frequency), and the window
    shape parameter that attains it."""
    attenuation = 2.285 * (numtaps - 1) * math.pi * transition_width + 7.95
    if attenuation > 50:
        return 0.1102 * (attenuation - 8.7)
    if attenuation >= 21:
        excess = attenuation - 21
        return 0.5842 * excess**0.4 + 0.07886 * excess
    return 0.0


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> torch.Tensor | None:
    """A Kaiser-windowed lowpass filter with unit DC gain.

    Args:
        numtaps: filter length (taps per dimension); 1 means "no filter" and gives ``None``.
        cutoff: cutoff frequency (same unit as ``fs``).
        width: width of the transition band (same unit as ``fs``); sets the Kaiser window.
        fs: sampling rate.
        radial: a radially symmetric 2-D filter ``[numtaps, numtaps]`` (an ideal circular lowpass,
            i.e. a jinc, under the separable Kaiser window) instead of a 1-D one ``[numtaps]``.

    Returns:
        A float32 tensor, or ``None`` when ``numtaps == 1``.
    """
    if numtaps < 1:
        raise ValueError(f"a filter needs at least one tap, not {numtaps}")
    if numtaps < 2:
        return None  # a single unit tap filters nothing
    nyquist = fs / 2
    window = np.kaiser(numtaps, _kaiser_beta_for(numtaps, width / nyquist))
    offsets = np.arange(numtaps, dtype=np.float64) - (numtaps - 1) / 2
    if radial:
        taps = _jinc(offsets / fs, cutoff) * np.outer(window, window)
    else:
        rel_cutoff = cutoff / nyquist
        taps = rel_cutoff * np.sinc(rel_cutoff * offsets) * window
    return torch.as_tensor(taps / taps.sum(), dtype=torch.float32)


def _jinc(coords: np.ndarray, cutoff: float) -> np.ndarray:
    """The impulse response of a disc of radius ``cutoff`` in the frequency plane, on the grid
    ``coords x coords``: J1(2 pi cutoff r) / (pi r), which tends to ``cutoff`` at r = 0."""
    radius = torch.from_numpy(np.hypot(coords[None, :], coords[:, None]))
    centre = radius == 0
    safe_radius = radius.masked_fill(centre, 1.0)
    response = torch.special.bessel_j1(2 * math.pi * cutoff * safe_radius) / (math.pi * safe_radius)
    return response.masked_fill(centre, float(cutoff)).numpy()


def _pad_or_crop(x: torch.Tensor, padding: Sequence[int]) -> torch.Tensor:
    """Pads (positive) or crops (negative) the last two dims by ``[left, right, top, bottom]``."""
    left, right, top, bottom = (int(p) for p in padding)
    if max(left, right, top, bottom) > 0:
        x = F.pad(x, [max(left, 0), max(right, 0), max(top, 0), max(bottom, 0)])
    if min(left, right, top, bottom) < 0:
        height, width = x.shape[-2:]
        x = x[..., max(-top, 0) : height - max(-bottom, 0), max(-left, 0) : width - max(-right, 0)]
    return x


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int = 1,
    down: int = 1,
    padding: Sequence[int] | int = 0,
    gain: float = 1.0,
    flip_filter: bool = False,
) -> torch.Tensor:
    """Upsample, FIR-filter and downsample a batch of images ``[N, C, H, W]``.

    The images are upsampled by inserting ``up - 1`` zeros after every sample, padded by
    ``padding`` (``[left, right, top, bottom]``, or one int for all four; negative values crop),
    convolved ("valid") with ``f`` and subsampled by keeping every ``down``-th sample. A 1-D
    ``f`` is applied separably along both axes, a 2-D one as is; ``None`` is the identity. The
    overall gain of the filter is scaled by ``gain`` (each 1-D pass by its square root). The
    filter is flipped (true convolution) unless ``flip_filter`` (correlation).
    """
    if up > 1:
        x = _zero_stuff(x, up)
    x = _pad_or_crop(x, [padding] * 4 if isinstance(padding, int) else padding)
    if f is None:  # a single tap of value `gain`
        x = x * gain if gain != 1 else x
        return x[:, :, ::down, ::down] if down > 1 else x
    kernel = f.to(device=x.device, dtype=torch.float32) * (gain ** (f.ndim / 2))
    kernel = (kernel if flip_filter else kernel.flip(list(range(kernel.ndim)))).to(x.dtype)
    # Depthwise convolution: the same kernel for every channel (much faster than folding the
    # channels into the batch, at least on CPU).
    channels = x.shape[1]
    if kernel.ndim == 2:
        return F.conv2d(x, kernel.expand(channels, 1, *kernel.shape), stride=down, groups=channels)
    along_x = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    along_y = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    x = F.conv2d(x, along_x, stride=(1, down), groups=channels)
    return F.conv2d(x, along_y, stride=(down, 1), groups=channels)


def _zero_stuff(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``factor - 1`` zeros after every sample along both spatial axes."""
    batch, channels, height, width = x.shape
    grid = F.pad(x.reshape(batch, channels, height, 1, width, 1), [0, factor - 1, 0, 0, 0, factor - 1])
    return grid.reshape(batch, channels, height * factor, width * factor)


def bias_lrelu(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    slope: float = 0.2,
    gain: float = math.sqrt(2),
    clamp: float | None = None,
) -> torch.Tensor:
    """``clamp(lrelu(x + b) * gain)`` with the bias broadcast along dim 1; ``slope=1`` is linear."""
    y = x if b is None else x + b.to(x.dtype).reshape([1, -1] + [1] * (x.ndim - 2))
    y = y if slope == 1 else F.leaky_relu(y, slope)
    y = y if gain == 1 else y * gain
    return y if clamp is None or clamp < 0 else torch.clamp(y, -clamp, clamp)


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Sequence[int] | int = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
) -> torch.Tensor:
    """The alias-suppressing nonlinearity: add the bias, upsample by ``up`` with the
    interpolation filter ``fu`` (scaled by ``up**2`` to keep the signal's magnitude; ``padding``
    as in :func:`upfirdn2d`), apply leaky ReLU, ``gain`` and ``clamp`` at the high rate, then
    lowpass with ``fd`` and downsample by ``down``."""
    high_rate = upfirdn2d(bias_lrelu(x, b, slope=1, gain=1), fu, up=up, padding=padding, gain=up**2,
                          flip_filter=flip_filter)  # fmt: skip
    return upfirdn2d(bias_lrelu(high_rate, None, slope=slope, gain=gain, clamp=clamp), fd, down=down,
                     flip_filter=flip_filter)  # fmt: skip
