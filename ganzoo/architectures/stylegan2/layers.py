"""The layers of ganzoo's StyleGAN2 networks (:mod:`ganzoo.architectures.stylegan2.networks`).

The shared helpers (block dtypes and memory formats, equalized-learning-rate gains, the
resolution pyramid), the equalized-learning-rate dense and convolution layers, and the mapping
network, which both the generator (``G.mapping``) and the conditional discriminator
(``D.mapping``) use. Names, shapes and arguments are those of the StyleGAN2-ADA PyTorch release.
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
