"""Low-level StyleGAN2 operations in pure PyTorch.

These reproduce the numerics of the StyleGAN2-ADA networks (bias + activation with gain and
clamp, FIR up/down-sampling, convolution with resampling, modulated convolution) on any device,
without custom CUDA kernels. Everything works on NCHW tensors.

Notation: a resampling filter is stored as a 2-D tensor ``f`` of shape ``[fh, fw]`` (the outer
product of the 1-D taps, normalized to sum 1), as the official networks store it in their
``resample_filter`` buffers.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

# name -> (function, default gain). Gains keep the signal variance roughly unchanged.
_SQRT2 = math.sqrt(2)
ACTIVATIONS = {
    "linear": (lambda x, alpha: x, 1.0),
    "relu": (lambda x, alpha: F.relu(x), _SQRT2),
    "lrelu": (lambda x, alpha: F.leaky_relu(x, alpha), _SQRT2),
    "tanh": (lambda x, alpha: torch.tanh(x), 1.0),
    "sigmoid": (lambda x, alpha: torch.sigmoid(x), 1.0),
    "elu": (lambda x, alpha: F.elu(x), 1.0),
    "selu": (lambda x, alpha: F.selu(x), 1.0),
    "softplus": (lambda x, alpha: F.softplus(x), 1.0),
    "swish": (lambda x, alpha: torch.sigmoid(x) * x, _SQRT2),
}
LRELU_ALPHA = 0.2


def activation_gain(activation: str) -> float:
    """Returns the default output gain of an activation function."""
    return ACTIVATIONS[activation][1]


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Adds a bias along ``dim``, applies an activation, scales by ``gain`` and clamps.

    Args:
        x: input tensor.
        b: bias of shape ``[x.shape[dim]]`` or None.
        dim: the channel dimension the bias runs along.
        act: activation name (see ``ACTIVATIONS``).
        gain: output scale; None means the activation's default gain.
        clamp: clamp the output to ``[-clamp, clamp]``; None (or negative) disables.

    Returns:
        A tensor of the same shape and dtype as ``x``.
    """
    fn, default_gain = ACTIVATIONS[act]
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    x = fn(x, LRELU_ALPHA)
    gain = default_gain if gain is None else float(gain)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def setup_filter(taps: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Turns 1-D filter taps into the normalized 2-D FIR filter the networks store.

    ``[1, 3, 3, 1]`` becomes its 4×4 outer product divided by its sum (64).
    """
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim == 1:
        f = torch.outer(f, f)
    return f / f.sum()


def _pad4(padding: int | Sequence[int]) -> list[int]:
    """Normalizes padding to ``[left, right, top, bottom]``."""
    if isinstance(padding, int):
        return [padding] * 4
    padding = list(padding)
    if len(padding) == 2:
        px, py = padding
        return [px, px, py, py]
    return padding


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int = 1,
    down: int = 1,
    padding: int | Sequence[int] = 0,
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsamples by zero insertion, pads, applies the FIR filter ``f``, and downsamples.

    The filter is applied as a true convolution (flipped), per channel. Negative padding crops.

    Args:
        x: ``[N, C, H, W]``.
        f: 2-D filter ``[fh, fw]`` or None (identity).
        up: integer upsampling factor.
        down: integer downsampling factor.
        padding: ``int`` or ``[left, right, top, bottom]``, applied after upsampling.
        gain: overall signal gain (multiplies the filter).
    """
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    n, c, h, w = x.shape
    px0, px1, py0, py1 = _pad4(padding)
    if up > 1:
        # Insert up-1 zeros after every sample (pad trailing zeros in a new axis, then merge).
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    conv_padding: int | list[int] = 0
    if px0 == px1 == py0 == py1 >= 0:
        conv_padding = px0  # let the convolution pad: no padded copy of x
    else:
        if max(px0, px1, py0, py1) > 0:
            x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
        if min(px0, px1, py0, py1) < 0:
            x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    f = f * gain
    f = f.to(x.dtype).flip([0, 1])  # convolution, not correlation
    weight = f[None, None].expand(c, 1, *f.shape)
    x = F.conv2d(x, weight, padding=conv_padding, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def _filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """Returns ``(fw, fh)``."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, gain: float = 1.0) -> torch.Tensor:
    """Upsamples ``x`` by ``up`` with the FIR filter ``f`` (output size ``H*up × W*up``)."""
    fw, fh = _filter_size(f)
    pad = [(fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=pad, gain=gain * up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2, gain: float = 1.0) -> torch.Tensor:
    """Downsamples ``x`` by ``down`` with the FIR filter ``f`` (output size ``H/down × W/down``)."""
    fw, fh = _filter_size(f)
    pad = [(fw - down + 1) // 2, (fw - down) // 2, (fh - down + 1) // 2, (fh - down) // 2]
    return upfirdn2d(x, f, down=down, padding=pad, gain=gain)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
) -> torch.Tensor:
    """2-D convolution combined with FIR up- or down-sampling.

    Without upsampling ``w`` is applied as a correlation (``F.conv2d``); with upsampling as a
    true convolution (a transposed convolution of the unflipped kernel).

    Upsampling is done as a strided transposed convolution followed by the FIR filter;
    downsampling as the FIR filter followed by a strided convolution; 1×1 kernels filter at the
    lower resolution. This ordering is what the official networks use, so results agree with
    theirs to float rounding.

    Args:
        x: ``[N, C_in, H, W]``.
        w: ``[C_out, C_in / groups, kh, kw]``.
        f: 2-D FIR filter for resampling (required when ``up`` or ``down`` > 1).
        up: upsampling factor (1 or 2).
        down: downsampling factor (1 or 2).
        padding: symmetric padding of the convolution, in input pixels.
        groups: convolution groups.
    """
    out_channels, in_per_group, kh, kw = w.shape
    fw, fh = _filter_size(f)
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2

    if kw == 1 and kh == 1:
        if down > 1 and up == 1:
            x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1])
            return F.conv2d(x, w, groups=groups)
        if up > 1 and down == 1:
            x = F.conv2d(x, w, groups=groups)
            return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up * up)

    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1])
        return F.conv2d(x, w, stride=down, groups=groups)

    if up > 1:
        # Transposed convolution wants [C_in, C_out / groups, kh, kw]. The kernel is used as is,
        # i.e. upsampling layers apply a true convolution with ``w``: that is the convention of
        # the official networks (and of every checkpoint trained with them).
        if groups == 1:
            wt = w.transpose(0, 1)
        else:
            wt = w.reshape(groups, out_channels // groups, in_per_group, kh, kw)
            wt = wt.transpose(1, 2).reshape(groups * in_per_group, out_channels // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = F.conv_transpose2d(x, wt, stride=up, padding=[pyt, pxt], groups=groups)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up * up)
        if down > 1:
            x = upfirdn2d(x, f, down=down)
        return x

    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return F.conv2d(x, w, padding=[py0, px0], groups=groups)

    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up * up)
    x = F.conv2d(x, w, groups=groups)
    if down > 1:
        x = upfirdn2d(x, f, down=down)
    return x


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    fused_modconv: bool = True,
) -> torch.Tensor:
    """StyleGAN2 modulated convolution: scale input channels by per-sample styles, convolve,
    and (optionally) demodulate so each output feature map has unit expected variance.

    The fused path folds the styles into a per-sample weight and runs one grouped convolution
    over the whole batch; the non-fused path scales activations instead (cheaper to
    differentiate). Both give the same result up to float rounding.

    Args:
        x: ``[N, C_in, H, W]``.
        weight: ``[C_out, C_in, kh, kw]``.
        styles: ``[N, C_in]``.
        noise: added after demodulation, broadcastable to the output, or None.
        up, down, padding, resample_filter: as in :func:`conv2d_resample`.
        demodulate: apply weight demodulation.
        fused_modconv: use the grouped-convolution path.

    Returns:
        ``[N, C_out, H', W']``.
    """
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape

    if x.dtype == torch.float16 and demodulate:
        # Pre-normalize so fp16 intermediates cannot overflow; demodulation cancels the scale.
        weight = weight * (
            1 / math.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True)
        )
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    dcoefs = None
    if demodulate:
        # sum_{i,k} (W[o,i,k] * s[n,i])^2 = sum_i s[n,i]^2 * sum_k W[o,i,k]^2: a small matrix
        # product instead of materializing (and differentiating) the [N,O,I,kh,kw] weights.
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [NO]

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding)
        if demodulate and noise is not None:
            x = torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1))
        elif demodulate:
            x = x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        elif noise is not None:
            x = x.add_(noise.to(x.dtype))
        return x

    scale = styles.reshape(batch_size, 1, in_channels)  # [N1I]
    if demodulate:
        scale = scale * dcoefs.reshape(batch_size, out_channels, 1)  # [NOI]
    w = weight.unsqueeze(0) * scale.reshape(*scale.shape, 1, 1)  # [NOIkk], one pass over the weights
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, groups=batch_size)
    x = x.reshape(batch_size, -1, *x.shape[2:])
    if noise is not None:
        x = x.add_(noise)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scales ``x`` so its mean square along ``dim`` is 1."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def minibatch_std(x: torch.Tensor, group_size: int | None, num_channels: int = 1) -> torch.Tensor:
    """Appends ``num_channels`` feature maps holding the per-group standard deviation.

    The batch is split into groups of ``min(group_size, N)`` samples (sample ``i`` belongs to
    group ``i % (N / G)``), the std over each group is averaged over channels (split into
    ``num_channels`` parts) and pixels, and broadcast back as extra channels.
    """
    n, c, h, w = x.shape
    g = n if group_size is None else min(group_size, n)
    if n % g != 0:
        raise ValueError(f"minibatch-std: batch size {n} is not divisible by group size {g}")
    fcount = num_channels
    y = x.reshape(g, -1, fcount, c // fcount, h, w)  # [GnFcHW]
    y = y - y.mean(dim=0)
    y = y.square().mean(dim=0)
    y = (y + 1e-8).sqrt()
    y = y.mean(dim=[2, 3, 4])  # [nF]
    y = y.reshape(-1, fcount, 1, 1)
    y = y.repeat(g, 1, h, w)  # [NFHW]
    return torch.cat([x, y], dim=1)
