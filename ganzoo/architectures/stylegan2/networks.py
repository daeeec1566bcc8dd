"""ganzoo's StyleGAN2 generator and discriminator.

The networks of Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (2020),
with the training-time details of "Training Generative Adversarial Networks with Limited Data"
(2020): mixed precision in the highest-resolution blocks, clamped convolution outputs, and the
projection discriminator for labels.

Compatibility is the contract of this module: class names, constructor arguments and defaults,
``init_kwargs``, module and tensor names (``mapping.fc0.weight``, ``synthesis.b16.conv0.affine.bias``,
``b64.skip.weight``, ...), tensor shapes and forward signatures are those of the StyleGAN2-ADA
PyTorch release, so its checkpoints load with ``strict=True`` and compute the same outputs.
Everything runs through the plain-PyTorch operations in :mod:`ganzoo.ops`.

Precision: a block marked for float16 computes in float16 only on CUDA and unless
``force_fp32`` is given; on CPU everything is float32.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganzoo import ops

LOWPASS_TAPS = (1, 3, 3, 1)  # binomial FIR taps for every 2x resampling
_HALF_POWER = math.sqrt(0.5)  # residual branches are summed with this weight each
_NOISE_MODES = ("random", "const", "none")
_ARCHITECTURES = ("orig", "skip", "resnet")

# oneDNN runs convolutions over many pixels and few channels much faster in NHWC than in NCHW
# on CPU, and the small early resolutions slower; this is where NHWC starts to pay off
# (measured with scripts/bench_stylegan2.py).
CPU_CHANNELS_LAST_MIN_RES = 64


# ----------------------------------------------------------------------------------------------
# Shared helpers


def _block_dtype(use_fp16: bool, force_fp32: bool, device: torch.device) -> torch.dtype:
    """Compute dtype of a block: half precision needs the flag, no override, and a CUDA device."""
    half = use_fp16 and not force_fp32 and device.type == "cuda"
    return torch.float16 if half else torch.float32


def _block_layout(
    resolution: int, use_fp16: bool, half_channels_last: bool, force_fp32: bool, device: torch.device
) -> tuple[torch.dtype, torch.memory_format]:
    """(dtype, memory format) a synthesis or discriminator block computes in."""
    dtype = _block_dtype(use_fp16, force_fp32, device)
    nhwc = (dtype == torch.float16 and half_channels_last) or (
        device.type == "cpu" and resolution >= CPU_CHANNELS_LAST_MIN_RES
    )
    return dtype, torch.channels_last if nhwc else torch.contiguous_format


def _format_of(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


def _check_architecture(architecture: str, what: str) -> None:
    if architecture not in _ARCHITECTURES:
        raise ValueError(f"unknown {what} architecture {architecture!r}")


def _scaled_clamp(clamp: float | None, gain: float) -> float | None:
    return None if clamp is None else clamp * gain


def _fan_in_gain(fan_in: int, lr_multiplier: float = 1.0) -> float:
    """Run-time weight scale of equalized learning rate: ``lr_multiplier / sqrt(fan_in)``."""
    return lr_multiplier / math.sqrt(fan_in)


def _at_scale(tensor: torch.Tensor, gain: float, dtype: torch.dtype) -> torch.Tensor:
    """``tensor`` in ``dtype``, times ``gain`` (no multiplication for a gain of 1)."""
    converted = tensor.to(dtype)
    return converted if gain == 1 else converted * gain


def _attach(module: nn.Module, name: str, value: torch.Tensor | None, learnable: bool) -> None:
    """Registers ``value`` as a parameter, or as a buffer when it is not to be trained."""
    if learnable:
        module.register_parameter(name, None if value is None else nn.Parameter(value))
    else:
        module.register_buffer(name, value)


def _keep_lowpass(module: nn.Module, taps: Sequence[float]) -> None:
    """The module's 2-D resampling kernel, as the buffer ``resample_filter``."""
    module.register_buffer("resample_filter", ops.setup_filter(taps))


def _style_affine(w_dim: int, channels: int) -> FullyConnectedLayer:
    """``w`` -> per-channel styles; they start at 1 (bias_init) so a fresh layer is a plain conv."""
    return FullyConnectedLayer(w_dim, channels, bias_init=1)


def _gaussian(shape: Sequence[int], channels_last: bool = False) -> torch.Tensor:
    """Unit-variance initial weights; equalized learning rate scales them at run time."""
    return torch.randn(list(shape)).contiguous(memory_format=_format_of(channels_last))


def _filled(shape: Sequence[int], value: float = 0.0) -> nn.Parameter:
    return nn.Parameter(torch.full(list(shape), float(value)))


def _blocks(net: nn.Module) -> list[nn.Module]:
    """The ``b{res}`` blocks of a network, in the order of its ``block_resolutions``."""
    return [getattr(net, f"b{res}") for res in net.block_resolutions]


def _recorded(**kwargs: Any) -> dict:
    """Constructor arguments as saved in ``init_kwargs`` (a deep copy, safe to edit)."""
    return copy.deepcopy(kwargs)


class _Module(nn.Module):
    """``nn.Module`` whose ``repr`` shows the attributes listed in ``_shown``."""

    _shown: tuple[str, ...] = ()

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={getattr(self, key)}" for key in self._shown)


@dataclass(frozen=True)
class _Pyramid:
    """Which resolutions a network has, how wide each is, and which run in float16."""

    img_resolution: int
    channel_base: int
    channel_max: int
    num_fp16_res: int

    def __post_init__(self) -> None:
        r = self.img_resolution
        if r < 4 or r & (r - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, not {r}")

    @property
    def log2(self) -> int:
        return self.img_resolution.bit_length() - 1

    def ascending(self) -> list[int]:
        """4, 8, ..., img_resolution."""
        return [1 << k for k in range(2, self.log2 + 1)]

    def width(self, resolution: int) -> int:
        return min(self.channel_base // resolution, self.channel_max)

    def half(self, resolution: int) -> bool:
        """The ``num_fp16_res`` largest resolutions use float16, 4×4 never does."""
        return resolution >= 8 and resolution.bit_length() - 1 > self.log2 - self.num_fp16_res


# ----------------------------------------------------------------------------------------------
# Equalized-learning-rate layers


class FullyConnectedLayer(_Module):
    """Dense layer with equalized learning rate.

    Parameters are stored so that their optimizer steps have the scale ``lr_multiplier``
    relative to other layers: the weight is drawn from ``N(0, 1 / lr_multiplier^2)`` and used
    times ``lr_multiplier / sqrt(in_features)``; the bias is used times ``lr_multiplier``.
    """

    _shown = ("in_features", "out_features", "activation")

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):  # fmt: skip
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(self._initial_weight(lr_multiplier))
        self.bias = nn.Parameter(self._initial_bias(bias_init, lr_multiplier)) if bias else None
        self.weight_gain, self.bias_gain = _fan_in_gain(in_features, lr_multiplier), lr_multiplier

    def _initial_weight(self, lr_multiplier: float) -> torch.Tensor:
        return _gaussian([self.out_features, self.in_features]) / lr_multiplier

    def _initial_bias(self, start: Any, lr_multiplier: float) -> torch.Tensor:
        return torch.full([self.out_features], float(start))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        matrix = _at_scale(self.weight, self.weight_gain, x.dtype)
        offset = None if self.bias is None else _at_scale(self.bias, self.bias_gain, x.dtype)
        if self.activation == "linear":
            return nn.functional.linear(x, matrix, offset)  # one fused matmul + bias
        return ops.bias_act(nn.functional.linear(x, matrix), offset, act=self.activation)


class Conv2dLayer(_Module):
    """Convolution with equalized learning rate (weights times ``1 / sqrt(fan_in)`` at run time),
    optional 2× FIR resampling, bias, activation and output clamping.

    ``trainable=False`` keeps weight and bias as buffers instead of parameters (frozen layers
    of FreezeD fine-tuning); ``channels_last`` only sets the storage format of the weight.
    """

    _shown = ("in_channels", "out_channels", "activation", "up", "down")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] = LOWPASS_TAPS, conv_clamp: float | None = None,
                 channels_last: bool = False, trainable: bool = True):  # fmt: skip
        super().__init__()
        self.in_channels, self.out_channels, self.activation = in_channels, out_channels, activation
        self.up, self.down, self.conv_clamp = up, down, conv_clamp
        _keep_lowpass(self, resample_filter)
        self.padding, self.act_gain = kernel_size // 2, ops.activation_gain(activation)
        self.weight_gain = _fan_in_gain(in_channels * kernel_size**2)
        kernel = _gaussian([out_channels, in_channels, kernel_size, kernel_size], channels_last)
        _attach(self, "weight", kernel, trainable)
        _attach(self, "bias", torch.zeros(out_channels) if bias else None, trainable)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        kernel = (self.weight * self.weight_gain).to(x.dtype)
        y = ops.conv2d_resample(x, kernel, f=self.resample_filter, up=self.up, down=self.down, padding=self.padding)
        offset = None if self.bias is None else self.bias.to(x.dtype)
        return ops.bias_act(y, offset, act=self.activation, gain=self.act_gain * gain,
                            clamp=_scaled_clamp(self.conv_clamp, gain))  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Mapping network


class MappingNetwork(_Module):
    """``(z, c) -> w``: an MLP from the normalized latent (and the normalized label embedding)
    to the intermediate latent space, optionally repeated ``num_ws`` times.

    With ``w_avg_beta`` set (and ``num_ws`` not None) it keeps ``w_avg``, an exponential moving
    average of ``w`` used for the truncation trick.

    Args:
        z_dim, c_dim, w_dim: latent, label and output sizes (``z_dim = 0``: no latent input,
            ``c_dim = 0``: unconditional).
        num_ws: copies of ``w`` to output; None returns ``[N, w_dim]``.
        num_layers: dense layers (``fc0 ... fc{num_layers-1}``).
        embed_features: size of the label embedding (default ``w_dim``).
        layer_features: width of the hidden layers (default ``w_dim``).
        activation: nonlinearity of every layer.
        lr_multiplier: learning-rate multiplier of every layer.
        w_avg_beta: decay of ``w_avg``; None keeps no average.
    """

    _shown = ("z_dim", "c_dim", "w_dim", "num_ws")
    _layer_class = FullyConnectedLayer  # subclasses may build their layers from another class

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None,
                 activation: str = "lrelu", lr_multiplier: float = 0.01,
                 w_avg_beta: float | None = 0.995):  # fmt: skip
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.num_ws, self.num_layers, self.w_avg_beta = num_ws, num_layers, w_avg_beta

        label_width = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        hidden = w_dim if layer_features is None else layer_features
        dense = self._layer_class
        if c_dim:
            self.embed = dense(c_dim, label_width)
        # Widths along the MLP: inputs, num_layers - 1 hidden sizes, then w_dim.
        widths = [z_dim + label_width] + [hidden] * (num_layers - 1) + [w_dim]
        for k, (fan_in, fan_out) in enumerate(itertools.pairwise(widths[: num_layers + 1])):
            self.add_module(f"fc{k}", dense(fan_in, fan_out, activation=activation, lr_multiplier=lr_multiplier))
        if self._tracks_average:
            self.register_buffer("w_avg", torch.zeros(w_dim))  # running mean of w, for truncation

    @property
    def _tracks_average(self) -> bool:
        return self.num_ws is not None and self.w_avg_beta is not None

    def _dense_layers(self) -> list[nn.Module]:
        return [self.get_submodule(f"fc{k}") for k in range(self.num_layers)]

    def _embed_inputs(self, z: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
        """The MLP input: normalized latent, normalized label embedding, or both side by side."""
        parts = [ops.normalize_2nd_moment(z.to(torch.float32))] if self.z_dim else []
        if self.c_dim:
            parts.append(ops.normalize_2nd_moment(self.embed(c.to(torch.float32))))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def _truncated(self, w: torch.Tensor, psi: float, cutoff: int | None) -> torch.Tensor:
        """``w_avg + psi * (w - w_avg)`` for the first ``cutoff`` rows of ``w`` (all when None)."""
        if not self._tracks_average:
            raise ValueError("truncation needs a mapping network that tracks w_avg")
        pulled = torch.lerp(self.w_avg, w, psi)
        return pulled if cutoff is None else torch.cat([pulled[:, :cutoff], w[:, cutoff:]], dim=1)

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> torch.Tensor:  # fmt: skip
        """``[N, num_ws, w_dim]`` (``[N, w_dim]`` without ``num_ws``).

        Args:
            z: ``[N, z_dim]`` latents, unused when ``z_dim == 0``.
            c: ``[N, c_dim]`` labels, unused when ``c_dim == 0``.
            truncation_psi: pull towards ``w_avg``: ``w_avg + psi * (w - w_avg)``; 1 leaves
                ``w`` as it is.
            truncation_cutoff: only the first this many of the ``num_ws`` copies are pulled
                (None: all).
            update_emas: fold this batch's mean ``w`` into ``w_avg``.
        """
        w = self._embed_inputs(z, c)
        for layer in self._dense_layers():
            w = layer(w)
        if update_emas and self._tracks_average:
            batch_mean = w.detach().mean(dim=0)
            self.w_avg.copy_(torch.lerp(batch_mean, self.w_avg, self.w_avg_beta))
        rows = w if self.num_ws is None else w.unsqueeze(1).expand(-1, self.num_ws, -1).contiguous()
        return rows if truncation_psi == 1 else self._truncated(rows, truncation_psi, truncation_cutoff)


# ----------------------------------------------------------------------------------------------
# Synthesis network


class SynthesisLayer(_Module):
    """A style-modulated, demodulated convolution (``weight``, with styles from ``affine``),
    per-pixel noise scaled by ``noise_strength``, bias and activation.

    ``up=2`` makes it a 2× upsampling convolution. The kernel is read through ``self.weight``
    at every call, so subclasses may compute it (see :mod:`ganzoo.architectures.stylegan2.adafm`).
    """

    _shown = ("in_channels", "out_channels", "resolution", "up", "activation")

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 kernel_size: int = 3, up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: Sequence[float] = LOWPASS_TAPS, conv_clamp: float | None = None,
                 channels_last: bool = False):  # fmt: skip
        super().__init__()
        self.in_channels, self.out_channels, self.resolution = in_channels, out_channels, resolution
        self.up, self.use_noise, self.activation, self.conv_clamp = up, use_noise, activation, conv_clamp
        self.affine = _style_affine(w_dim, in_channels)
        _keep_lowpass(self, resample_filter)
        self.padding, self.act_gain = kernel_size // 2, ops.activation_gain(activation)
        self.weight = nn.Parameter(_gaussian([out_channels, in_channels, kernel_size, kernel_size], channels_last))
        if self.use_noise:  # one fixed noise image for noise_mode='const', and a learned strength
            self.register_buffer("noise_const", _gaussian([resolution, resolution]))
            self.noise_strength = _filled([])
        self.bias = _filled([out_channels])

    def _noise(self, mode: str, batch: int, device: torch.device) -> torch.Tensor | None:
        if mode not in _NOISE_MODES:
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', not {mode!r}")
        if not self.use_noise or mode == "none":
            return None
        if mode == "const":
            return self.noise_const * self.noise_strength
        fresh = torch.randn([batch, 1, self.resolution, self.resolution], device=device)
        return fresh * self.noise_strength

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool = True,
                gain: float = 1.0) -> torch.Tensor:  # fmt: skip
        noise = self._noise(noise_mode, x.shape[0], x.device)
        y = ops.modulated_conv2d(x, self.weight, self.affine(w), noise=noise, up=self.up, padding=self.padding,
                                 resample_filter=self.resample_filter, fused_modconv=fused_modconv)  # fmt: skip
        return ops.bias_act(y, self.bias.to(y.dtype), act=self.activation, gain=self.act_gain * gain,
                            clamp=_scaled_clamp(self.conv_clamp, gain))  # fmt: skip


class ToRGBLayer(_Module):
    """Features to image channels: a modulated convolution without demodulation (the
    equalized-lr scale goes into the styles), plus bias and clamping."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None, channels_last: bool = False):  # fmt: skip
        super().__init__()
        self.conv_clamp, self.weight_gain = conv_clamp, _fan_in_gain(in_channels * kernel_size**2)
        self.affine = _style_affine(w_dim, in_channels)
        self.weight = nn.Parameter(_gaussian([out_channels, in_channels, kernel_size, kernel_size], channels_last))
        self.bias = _filled([out_channels])

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        scaled_style = self.affine(w) * self.weight_gain
        colour = ops.modulated_conv2d(x, self.weight, scaled_style, demodulate=False, fused_modconv=fused_modconv)
        return ops.bias_act(colour, self.bias.to(colour.dtype), clamp=self.conv_clamp)


class SynthesisBlock(_Module):
    """The layers of one synthesis resolution.

    The 4×4 block starts from the learned ``const``; the others upsample with ``conv0``. Then
    ``conv1``, and ``torgb`` where the architecture wants an image here: 'skip' at every
    resolution (images summed across resolutions), 'orig' and 'resnet' at the last one only;
    'resnet' adds a 1×1 upsampling ``skip`` around the two convolutions.

    It consumes ``num_conv + num_torgb`` rows of ``ws``; its ``torgb`` row is also the first row
    of the next block.
    """

    _shown = ("resolution", "architecture")

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter: Sequence[float] = LOWPASS_TAPS,
                 conv_clamp: float | None = None, use_fp16: bool = False, fp16_channels_last: bool = False,
                 **layer_kwargs: Any):  # fmt: skip
        _check_architecture(architecture, "synthesis")
        super().__init__()
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture = img_channels, is_last, architecture
        self.use_fp16, self.channels_last = use_fp16, use_fp16 and fp16_channels_last
        _keep_lowpass(self, resample_filter)

        nhwc = {"channels_last": self.channels_last}
        shared = {"w_dim": w_dim, "resolution": resolution, "conv_clamp": conv_clamp, **nhwc, **layer_kwargs}
        if self.in_channels:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, resample_filter=resample_filter, **shared)
        else:  # the first block starts from a learned 4x4 input
            self.const = nn.Parameter(_gaussian([out_channels, resolution, resolution]))
        self.conv1 = SynthesisLayer(out_channels, out_channels, **shared)
        self.num_conv = 2 if self.in_channels else 1
        self.num_torgb = int(self._emits_image)
        if self._emits_image:
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp, **nhwc)
        if self._residual and self.in_channels:
            self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, up=2, resample_filter=resample_filter,
                                    **nhwc)  # fmt: skip

    @property
    def _emits_image(self) -> bool:
        return self.architecture == "skip" or self.is_last

    @property
    def _residual(self) -> bool:
        return self.architecture == "resnet"

    def _prefers_fused(self, dtype: torch.dtype, layout: torch.memory_format, batch: int,
                       device: torch.device | None = None) -> bool:  # fmt: skip
        """Per-sample kernels in one grouped convolution win for float32 NCHW inference. For
        training, half-precision batches and NHWC, scaling activations around a shared kernel is
        faster and (under autograd) numerically safer. Compiled for CPU (:mod:`ganzoo.compile`),
        the shared kernel wins everywhere: the scales fuse into neighbouring kernels, and oneDNN
        convolves a batch with one kernel faster than a grouped batch with per-sample kernels
        (which it must also build and reorder on every call)."""
        if device is not None and device.type == "cpu" and torch.compiler.is_compiling():
            return False
        inference_nchw = not self.training and layout == torch.contiguous_format
        return inference_nchw and (dtype == torch.float32 or batch == 1)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, force_fp32: bool = False,
                fused_modconv: bool | None = None,
                noise_mode: str = "random") -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        batch = ws.shape[0]
        dtype, layout = _block_layout(self.resolution, self.use_fp16, self.channels_last, force_fp32, ws.device)
        fused = self._prefers_fused(dtype, layout, batch, ws.device) if fused_modconv is None else fused_modconv
        run = {"fused_modconv": fused, "noise_mode": noise_mode}
        conv_ws = ws[:, : self.num_conv].unbind(dim=1)

        if not self.in_channels:
            start = self.const.to(dtype).expand(batch, -1, -1, -1).contiguous(memory_format=layout)
            features = self.conv1(start, conv_ws[0], **run)
        elif self._residual:
            features = x.to(dtype=dtype, memory_format=layout)
            shortcut = self.skip(features, gain=_HALF_POWER)
            features = self.conv0(features, conv_ws[0], **run)
            features = shortcut.add_(self.conv1(features, conv_ws[1], gain=_HALF_POWER, **run))
        else:
            features = x.to(dtype=dtype, memory_format=layout)
            features = self.conv1(self.conv0(features, conv_ws[0], **run), conv_ws[1], **run)

        image = None if img is None else ops.upsample2d(img, self.resample_filter)
        if self._emits_image:
            colour = self.torgb(features, ws[:, self.num_conv], fused_modconv=fused)
            colour = colour.to(torch.float32, memory_format=torch.contiguous_format)
            image = colour if image is None else image.add_(colour)
        return features, image


class SynthesisNetwork(_Module):
    """``ws [N, num_ws, w_dim] -> images [N, img_channels, R, R]`` (nominally in [-1, 1]).

    Blocks ``b4, b8, ..., b{R}``; block widths are ``min(channel_base // res, channel_max)``;
    the ``num_fp16_res`` largest resolutions (never 4×4) may run in float16.
    ``block_kwargs`` go to every :class:`SynthesisBlock` (and on to its layers).
    """

    _shown = ("w_dim", "num_ws", "img_resolution", "img_channels", "num_fp16_res")

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, **block_kwargs: Any):  # fmt: skip
        pyramid = _Pyramid(img_resolution, channel_base, channel_max, num_fp16_res)
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.img_resolution_log2, self.num_fp16_res = pyramid.log2, num_fp16_res
        self.block_resolutions = pyramid.ascending()
        widths = [pyramid.width(res) for res in self.block_resolutions]
        for res, width_in, width_out in zip(self.block_resolutions, [0] + widths, widths):  # 4x4: no feature input
            half = pyramid.half(res)
            block = SynthesisBlock(width_in, width_out, w_dim=w_dim, resolution=res, img_channels=img_channels,
                                   is_last=res == img_resolution, use_fp16=half, **block_kwargs)  # fmt: skip
            self.add_module(f"b{res}", block)
        blocks = _blocks(self)
        # Each block's ToRGB row is shared with the next block's first conv; only the last is extra.
        self.num_ws = sum(block.num_conv for block in blocks) + blocks[-1].num_torgb

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False,
                fused_modconv: bool | None = None) -> torch.Tensor:  # fmt: skip
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        latents = ws.to(torch.float32)
        run = {"force_fp32": force_fp32, "fused_modconv": fused_modconv, "noise_mode": noise_mode}
        features = picture = None
        first = 0
        for block in _blocks(self):
            own_rows = latents[:, first : first + block.num_conv + block.num_torgb]
            features, picture = block(features, picture, own_rows, **run)
            first += block.num_conv
        return picture


class Generator(_Module):
    """``G(z, c) -> images``: ``G.mapping`` (:class:`MappingNetwork`) then ``G.synthesis``
    (:class:`SynthesisNetwork`).

    ``synthesis_kwargs`` may also be given flat, as later StyleGAN code does; both end up in
    ``init_kwargs["synthesis_kwargs"]``.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, synthesis_kwargs: dict | None = None,
                 **extra_synthesis_kwargs: Any):  # fmt: skip
        super().__init__()
        mapping_args = dict(mapping_kwargs or {})
        synthesis_args = {**(synthesis_kwargs or {}), **extra_synthesis_kwargs}
        self.init_kwargs = _recorded(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            mapping_kwargs=mapping_args, synthesis_kwargs=synthesis_args,
        )  # fmt: skip
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_args)
        self.synthesis, self.num_ws = synthesis, synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, num_ws=synthesis.num_ws, **mapping_args)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, noise_mode: str = "random", force_fp32: bool = False,
                update_emas: bool = False, fused_modconv: bool | None = None) -> torch.Tensor:  # fmt: skip
        """Images ``[N, img_channels, R, R]`` for latents ``z [N, z_dim]``.

        ``c`` holds one-hot labels ``[N, c_dim]`` (None or an empty tensor when unconditional);
        ``truncation_psi``/``truncation_cutoff``/``update_emas`` go to the mapping network,
        ``noise_mode`` ('random', 'const' or 'none'), ``force_fp32`` and ``fused_modconv``
        (None: chosen per block) to the synthesis network.
        """
        labels = torch.zeros([z.shape[0], 0], device=z.device) if c is None else c
        truncation = {"truncation_psi": truncation_psi, "truncation_cutoff": truncation_cutoff}
        latents = self.mapping(z, labels, update_emas=update_emas, **truncation)
        return self.synthesis(latents, noise_mode=noise_mode, force_fp32=force_fp32, fused_modconv=fused_modconv)


# ----------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(_Module):
    """The layers of one discriminator resolution: ``fromrgb`` (first block, or every block
    with 'skip'), ``conv0``, the downsampling ``conv1``, and with 'resnet' a 1×1 downsampling
    ``skip`` shortcut.

    Layers are numbered from the image input on, starting at ``first_layer_idx``; those
    numbered below ``freeze_layers`` hold their weights as buffers (FreezeD). ``num_layers``
    says how many this block has.
    """

    _shown = ("resolution", "architecture")

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, img_channels: int,
                 first_layer_idx: int, architecture: str = "resnet", activation: str = "lrelu",
                 resample_filter: Sequence[float] = LOWPASS_TAPS, conv_clamp: float | None = None,
                 use_fp16: bool = False, fp16_channels_last: bool = False, freeze_layers: int = 0):  # fmt: skip
        if in_channels not in (0, tmp_channels):
            raise ValueError("DiscriminatorBlock: in_channels must be 0 or tmp_channels")
        _check_architecture(architecture, "discriminator")
        super().__init__()
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.first_layer_idx, self.architecture = first_layer_idx, architecture
        self.use_fp16, self.channels_last = use_fp16, use_fp16 and fp16_channels_last
        _keep_lowpass(self, resample_filter)

        # (name, input width, output width, kernel size, decimation), in the order data flows.
        plan = [("conv0", tmp_channels, tmp_channels, 3, 1), ("conv1", tmp_channels, out_channels, 3, 2)]
        if self._reads_image:
            plan.insert(0, ("fromrgb", img_channels, tmp_channels, 1, 1))
        if self._residual:
            plan.append(("skip", tmp_channels, out_channels, 1, 2))
        self.num_layers = len(plan)
        for index, (name, width_in, width_out, size, down) in enumerate(plan, start=first_layer_idx):
            options: dict[str, Any] = {"channels_last": self.channels_last, "trainable": index >= freeze_layers}
            if down > 1:
                options.update(down=down, resample_filter=resample_filter)
            if name == "skip":  # a linear, bias-free shortcut
                options.update(bias=False)
            else:
                options.update(activation=activation, conv_clamp=conv_clamp)
            self.add_module(name, Conv2dLayer(width_in, width_out, size, **options))

    @property
    def _reads_image(self) -> bool:
        return self.architecture == "skip" or not self.in_channels

    @property
    def _residual(self) -> bool:
        return self.architecture == "resnet"

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None,
                force_fp32: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
        device = img.device if x is None else x.device
        dtype, layout = _block_layout(self.resolution, self.use_fp16, self.channels_last, force_fp32, device)
        features = None if x is None else x.to(dtype=dtype, memory_format=layout)
        if self._reads_image:
            picture = img.to(dtype=dtype, memory_format=layout)
            from_picture = self.fromrgb(picture)
            features = from_picture if features is None else features + from_picture
            # 'skip' hands a smaller copy of the image to the next block; the others need no more.
            img = None if self.architecture != "skip" else ops.downsample2d(picture, self.resample_filter)
        main = self.conv1(self.conv0(features), gain=_HALF_POWER if self._residual else 1.0)
        if not self._residual:
            return main, img
        return self.skip(features, gain=_HALF_POWER).add_(main), img


class MinibatchStdLayer(_Module):
    """Appends ``num_channels`` maps of within-group feature spread (:func:`ops.minibatch_std`)."""

    _shown = ("group_size", "num_channels")

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.minibatch_std(x, self.group_size, self.num_channels)


class DiscriminatorEpilogue(_Module):
    """The 4×4 head, always in float32: (``fromrgb`` with 'skip'), minibatch statistics, a 3×3
    ``conv``, the dense ``fc`` over all pixels, and ``out``.

    Unconditional, ``out`` is the logit. With labels (``cmap_dim > 0``) ``out`` is a
    ``cmap_dim``-vector whose scaled inner product with the embedded label is the logit
    (projection discriminator).
    """

    _shown = ("resolution", "architecture")

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: float | None = None):  # fmt: skip
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.img_channels, self.architecture = img_channels, architecture
        if self._reads_image:
            self.fromrgb = Conv2dLayer(img_channels, in_channels, activation=activation, kernel_size=1)
        # Minibatch statistics, unless disabled with mbstd_num_channels=0.
        with_stats = mbstd_num_channels > 0
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if with_stats else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)  # fmt: skip
        flat_features = in_channels * resolution * resolution
        self.fc = FullyConnectedLayer(flat_features, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, cmap_dim or 1)

    @property
    def _reads_image(self) -> bool:
        return self.architecture == "skip"

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None,
                force_fp32: bool = False) -> torch.Tensor:  # fmt: skip
        as_fp32 = {"dtype": torch.float32, "memory_format": torch.contiguous_format}
        features = x.to(**as_fp32)
        if self._reads_image:
            features = features + self.fromrgb(img.to(**as_fp32))
        features = features if self.mbstd is None else self.mbstd(features)
        head = self.out(self.fc(self.conv(features).flatten(1)))
        if not self.cmap_dim:
            return head
        # Projection: the label embedding's inner product with the head, normalized by its size.
        return (head * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))


class Discriminator(_Module):
    """``D(img, c) -> logits [N, 1]``.

    Blocks ``b{R}, ..., b8`` halve the resolution down to the 4×4 head ``b4``
    (:class:`DiscriminatorEpilogue`); widths follow ``min(channel_base // res, channel_max)``
    and the ``num_fp16_res`` largest resolutions may run in float16. Labels are embedded by
    ``mapping`` (a :class:`MappingNetwork` without latent input) into ``cmap_dim`` features
    (default: the 4×4 width).
    """

    _shown = ("c_dim", "img_resolution", "img_channels")

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, architecture: str = "resnet",
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 0,
                 conv_clamp: float | None = None, cmap_dim: int | None = None, block_kwargs: dict | None = None,
                 mapping_kwargs: dict | None = None, epilogue_kwargs: dict | None = None):  # fmt: skip
        pyramid = _Pyramid(img_resolution, channel_base, channel_max, num_fp16_res)
        super().__init__()
        block_args, mapping_args = dict(block_kwargs or {}), dict(mapping_kwargs or {})
        epilogue_args = dict(epilogue_kwargs or {})
        self.init_kwargs = _recorded(
            c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels, architecture=architecture,
            channel_base=channel_base, channel_max=channel_max, num_fp16_res=num_fp16_res, conv_clamp=conv_clamp,
            cmap_dim=cmap_dim, block_kwargs=block_args, mapping_kwargs=mapping_args, epilogue_kwargs=epilogue_args,
        )  # fmt: skip
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.img_resolution_log2 = pyramid.log2
        self.block_resolutions = pyramid.ascending()[:0:-1]  # R, R/2, ..., 8
        self.cmap_dim = 0 if c_dim == 0 else (pyramid.width(4) if cmap_dim is None else cmap_dim)

        shared = {"img_channels": img_channels, "architecture": architecture, "conv_clamp": conv_clamp}
        depth = 0  # layers before this block, counted from the image (for freeze_layers)
        feature_inputs = [0] + [pyramid.width(res) for res in self.block_resolutions[1:]]  # the first: image only
        for res, width_in in zip(self.block_resolutions, feature_inputs):
            block = DiscriminatorBlock(width_in, pyramid.width(res), pyramid.width(res // 2), resolution=res,
                                       first_layer_idx=depth, use_fp16=pyramid.half(res), **block_args,
                                       **shared)  # fmt: skip
            self.add_module(f"b{res}", block)
            depth += block.num_layers
        if c_dim:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=self.cmap_dim, num_ws=None, w_avg_beta=None,
                                          **mapping_args)  # fmt: skip
        self.b4 = DiscriminatorEpilogue(pyramid.width(4), cmap_dim=self.cmap_dim, resolution=4, **epilogue_args,
                                        **shared)  # fmt: skip

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False) -> torch.Tensor:
        """Logits ``[N, 1]`` for images ``[N, img_channels, R, R]`` (and labels ``c [N, c_dim]``)."""
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"img must be [N, {', '.join(map(str, expected))}], got {list(img.shape)}")
        features, picture = None, img
        for block in _blocks(self):
            features, picture = block(features, picture, force_fp32=force_fp32)
        label_map = self.mapping(None, c) if self.c_dim else None
        return self.b4(features, picture, label_map, force_fp32=force_fp32)


NETWORK_CLASSES = {"Generator": Generator, "Discriminator": Discriminator}


def build_network(class_name: str, init_kwargs: dict) -> nn.Module:
    """A fresh network of class ``class_name`` ('Generator' or 'Discriminator') from its
    StyleGAN2-ADA constructor kwargs (copied, never modified)."""
    if class_name not in NETWORK_CLASSES:
        raise ValueError(f"unknown StyleGAN2 network class {class_name!r}")
    return NETWORK_CLASSES[class_name](**copy.deepcopy(init_kwargs))
