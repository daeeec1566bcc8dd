"""The StyleGAN3 generator (configs T and R), written from the paper.

Karras et al. 2021, "Alias-Free Generative Adversarial Networks", treat every feature map as a
band-limited continuous signal sampled on a grid. The synthesis network starts from Fourier
features (sinusoids whose frequencies lie within the first layer's band, rotated and translated
by a per-sample transform predicted from ``w``), followed by ``num_layers`` modulated
convolutions, each one followed by a filtered nonlinearity: the signal is upsampled, passed
through leaky ReLU and lowpass-filtered back to the layer's output rate, so that the
nonlinearity creates no aliases. Cutoffs grow geometrically from ``first_cutoff`` to half the
output resolution over the first ``num_layers - num_critical`` layers; the last
``num_critical`` layers are critically sampled. Config T uses 3x3 convolutions and separable
Kaiser-windowed sinc filters; config R uses 1x1 convolutions, radially symmetric (jinc)
downsampling filters and twice the channels.

The mapping network and its dense layers are StyleGAN2's (:mod:`ganzoo.architectures.stylegan2.networks`)
with StyleGAN3's constructors and defaults. Module, parameter and buffer names match the
released pickles', so their state dicts load with ``load_state_dict(strict=True)``; the filters
are buffers (taken from the file when loading, designed here when a network is built fresh).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ganzoo import ops
from ganzoo.architectures.stylegan2 import networks as sg2
from ganzoo.architectures.stylegan3.ops import design_lowpass_filter, filtered_lrelu

__all__ = [
    "FullyConnectedLayer", "Generator", "MappingNetwork", "SynthesisInput", "SynthesisLayer",
    "SynthesisNetwork", "config_kwargs",
]  # fmt: skip

_LRELU_SLOPE = 0.2
_LRELU_GAIN = math.sqrt(2)
_NO_MOTION = (1, 0, 0, 0)  # affine output of the input transform: cos, sin, shift x, shift y


def config_kwargs(config: str) -> dict[str, Any]:
    """Synthesis settings of the paper's configs: ``"T"`` (translation equivariance) or ``"R"``
    (rotation equivariance: 1x1 convolutions, radial filters, twice the channels). Multiply
    ``channel_base``/``channel_max`` for R yourself when you pass your own."""
    known = {
        "T": {"channel_base": 32768, "channel_max": 512},
        "R": {"channel_base": 65536, "channel_max": 1024, "conv_kernel": 1, "use_radial_filters": True},
    }
    try:
        return dict(known[config.upper()])
    except KeyError:
        raise ValueError(f"unknown StyleGAN3 config {config!r}: expected 'T' or 'R'") from None


def _xy(value: Any) -> np.ndarray:
    """A size as a numpy pair ``[width, height]`` (one number stands for both)."""
    return np.broadcast_to(np.asarray(value), [2]).copy()


def _with_units(pairs: list[tuple[str, Any]]) -> str:
    """``name=value`` pairs for ``extra_repr``: floats short, arrays as plain lists."""
    shown = []
    for name, value in pairs:
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, (float, np.floating)):
            value = f"{float(value):g}"
        shown.append(f"{name}={value}")
    return ", ".join(shown)


# ----------------------------------------------------------------------------------------------
# Mapping


class FullyConnectedLayer(sg2.FullyConnectedLayer):
    """StyleGAN2's equalized-learning-rate dense layer, built with StyleGAN3's arguments: the
    activation before ``bias``, a scale ``weight_init`` of the initial weights, and a bias start
    value per output (``bias_init``, a number or a list), stored divided by ``lr_multiplier``."""

    def __init__(self, in_features: int, out_features: int, activation: str = "linear", bias: bool = True,
                 lr_multiplier: float = 1.0, weight_init: float = 1.0, bias_init: Any = 0.0):  # fmt: skip
        self._init_scale = weight_init  # read by _initial_weight during the parent's __init__
        super().__init__(in_features, out_features, bias=bias, activation=activation,
                         lr_multiplier=lr_multiplier, bias_init=bias_init)  # fmt: skip

    def _initial_weight(self, lr_multiplier: float) -> torch.Tensor:
        return torch.randn([self.out_features, self.in_features]) * (self._init_scale / lr_multiplier)

    def _initial_bias(self, start: Any, lr_multiplier: float) -> torch.Tensor:
        per_output = np.broadcast_to(np.asarray(start, dtype=np.float32), [self.out_features])
        return torch.as_tensor(per_output.copy()) / lr_multiplier


class MappingNetwork(sg2.MappingNetwork):
    """StyleGAN2's mapping network with StyleGAN3's defaults (two layers, ``w_avg`` decay
    0.998); ``num_ws`` copies of ``w`` always, and ``embed`` is None without labels."""

    _layer_class = FullyConnectedLayer

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 2,
                 lr_multiplier: float = 0.01, w_avg_beta: float = 0.998):  # fmt: skip
        super().__init__(z_dim, c_dim, w_dim, num_ws, num_layers=num_layers, lr_multiplier=lr_multiplier,
                         w_avg_beta=w_avg_beta)  # fmt: skip
        if not c_dim:
            self.embed = None  # unconditional: no label embedding


# ----------------------------------------------------------------------------------------------
# Synthesis


def _homogeneous(a: Any, b: Any, c: Any, d: Any, e: Any, f: Any, like: torch.Tensor) -> torch.Tensor:
    """A batch of 2-D affine maps ``[[a, b, e], [c, d, f], [0, 0, 1]]``: ``[N, 3, 3]``."""
    matrices = like.new_zeros([like.shape[0], 3, 3])
    for (row, col), entry in zip([(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (1, 2)], (a, b, c, d, e, f)):
        matrices[:, row, col] = entry
    matrices[:, 2, 2] = 1
    return matrices


class SynthesisInput(sg2._Module):
    """Fourier features: ``channels`` sinusoids of fixed random frequencies (inside a disc of
    radius ``bandwidth``) and phases, sampled on a ``size`` grid at ``sampling_rate``, after the
    per-sample rotation and translation predicted by ``affine`` from ``w`` and the user-set
    ``transform`` (a 3x3 matrix applied to the input coordinates), then mixed by ``weight``."""

    def __init__(self, w_dim: int, channels: int, size: Any, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim, self.channels, self.size = w_dim, channels, _xy(size)
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        # Gaussian draws keep their direction; a draw of length r gets the length
        # bandwidth * exp(-r^2 / 4), so frequencies crowd low and thin out towards the band edge.
        directions = torch.randn([channels, 2])
        length = directions.square().sum(dim=1, keepdim=True).sqrt()
        frequencies = directions / (length * length.square().exp().pow(0.25)) * bandwidth
        offsets = torch.rand([channels]) - 0.5
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        # The affine starts as (1, 0, 0, 0): no rotation (cos 1, sin 0) and no translation.
        self.affine = FullyConnectedLayer(w_dim, len(_NO_MOTION), weight_init=0, bias_init=_NO_MOTION)
        for name, value in (("transform", torch.eye(3, 3)), ("freqs", frequencies), ("phases", offsets)):
            self.register_buffer(name, value)

    def _pixel_centres(self, device: torch.device) -> torch.Tensor:
        """``[H, W, 2]`` sample positions (x, y) in the units of the frequencies."""
        width, height = int(self.size[0]), int(self.size[1])
        half_extent = [0.5 * width / self.sampling_rate, 0.5 * height / self.sampling_rate]
        scale = torch.zeros([1, 2, 3], device=device)
        scale[0, 0, 0], scale[0, 1, 1] = half_extent
        return nn.functional.affine_grid(scale, [1, 1, height, width], align_corners=False)[0]

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        motion = self.affine(w)
        motion = motion / motion[:, :2].norm(dim=1, keepdim=True)  # (cos, sin) of a unit rotation
        cos, sin, dx, dy = motion.unbind(dim=1)
        rotate = _homogeneous(cos, -sin, sin, cos, 0, 0, like=motion)
        shift = _homogeneous(1, 0, 0, 1, -dx, -dy, like=motion)
        mapping = rotate @ shift @ self.transform.unsqueeze(0)  # [N, 3, 3], applied to coordinates

        # A coordinate map moves onto the sinusoids: its linear part turns the frequencies, its
        # offset becomes a phase shift.
        linear, offset = mapping[:, :2, :2], mapping[:, :2, 2:]
        phases = self.phases.unsqueeze(0) + (self.freqs @ offset).squeeze(2)  # [N, C]
        freqs = self.freqs @ linear  # [N, C, 2]
        # Frequencies the transform pushed beyond the band fade out linearly until Nyquist.
        overshoot = freqs.norm(dim=2) - self.bandwidth
        headroom = self.sampling_rate / 2 - self.bandwidth
        amplitudes = (1 - overshoot / headroom).clamp(0, 1)

        cycles = torch.einsum("hwk,nck->nhwc", self._pixel_centres(w.device), freqs)
        cycles = cycles + phases[:, None, None, :]
        features = torch.sin(cycles * (2 * math.pi)) * amplitudes[:, None, None, :]  # [N, H, W, C]
        mixed = features @ (self.weight / math.sqrt(self.channels)).t()
        return mixed.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return _with_units([("w_dim", self.w_dim), ("channels", self.channels), ("size", self.size),
                            ("sampling_rate", self.sampling_rate), ("bandwidth", self.bandwidth)])  # fmt: skip


def _style_affine(w_dim: int, channels: int) -> FullyConnectedLayer:
    """``w`` -> per-input-channel styles, starting at 1."""
    return FullyConnectedLayer(w_dim, channels, bias_init=1)


def _rms_scaled(t: torch.Tensor, dims: list[int] | None = None) -> torch.Tensor:
    """``t`` divided by its root mean square (over ``dims``, or all of it)."""
    mean_square = t.square().mean() if dims is None else t.square().mean(dim=dims, keepdim=True)
    return t * mean_square.rsqrt()


def _sample_kernels(weight: torch.Tensor, styles: torch.Tensor, input_gain: torch.Tensor,
                    demodulate: bool) -> torch.Tensor:  # fmt: skip
    """One kernel per sample, ``[N, O, I, k, k]``: ``weight`` with its input channels scaled by
    the styles (and ``input_gain``), and with ``demodulate`` every output filter at unit norm.

    Before demodulating, weight and styles are brought to unit RMS; that leaves the result as it
    is but keeps float16 intermediates in range."""
    n = styles.shape[0]
    if not demodulate:
        return weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1) * input_gain
    kernels = _rms_scaled(weight, [1, 2, 3]).unsqueeze(0) * _rms_scaled(styles).reshape(n, 1, -1, 1, 1)
    norms = (kernels.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    return kernels * norms.reshape(n, -1, 1, 1, 1) * input_gain


def _whole_ratio(high: float, low: float) -> int:
    """``high / low``, which the frequency plan makes a whole number."""
    ratio = int(np.rint(high / low))
    if low * ratio != high:
        raise ValueError(f"sampling rates {high} and {low} are not whole multiples")
    return ratio


class SynthesisLayer(sg2._Module):
    """One modulated convolution followed by the filtered leaky ReLU (or, for the last layer,
    the 1x1 "toRGB" convolution with bias and clamp only).

    The signal enters at ``in_sampling_rate`` with content up to ``in_cutoff``; the nonlinearity
    runs at ``tmp_sampling_rate`` (``lrelu_upsampling`` times the higher of the two rates),
    reached through the interpolation filter ``up_filter``; ``down_filter`` then removes what
    lies above ``out_cutoff`` before decimation to ``out_sampling_rate``."""

    def __init__(self, w_dim: int, is_torgb: bool, is_critically_sampled: bool, use_fp16: bool, in_channels: int,
                 out_channels: int, in_size: Any, out_size: Any, in_sampling_rate: float, out_sampling_rate: float,
                 in_cutoff: float, out_cutoff: float, in_half_width: float, out_half_width: float,
                 conv_kernel: int = 3, filter_size: int = 6, lrelu_upsampling: int = 2,
                 use_radial_filters: bool = False, conv_clamp: float | None = 256,
                 magnitude_ema_beta: float = 0.999):  # fmt: skip
        super().__init__()
        flags = (is_torgb, is_critically_sampled, use_fp16)
        self.is_torgb, self.is_critically_sampled, self.use_fp16 = (bool(flag) for flag in flags)
        self.w_dim, self.in_channels, self.out_channels = w_dim, in_channels, out_channels
        self.in_size, self.out_size = _xy(in_size), _xy(out_size)
        self.in_sampling_rate, self.out_sampling_rate = in_sampling_rate, out_sampling_rate
        self.in_cutoff, self.out_cutoff = in_cutoff, out_cutoff
        self.in_half_width, self.out_half_width = in_half_width, out_half_width
        self.conv_clamp, self.magnitude_ema_beta = conv_clamp, magnitude_ema_beta
        # toRGB: a 1x1 convolution without nonlinearity, so nothing to oversample.
        self.conv_kernel = conv_kernel if not self.is_torgb else 1
        oversampling = lrelu_upsampling if not self.is_torgb else 1
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * oversampling
        fan_in = in_channels * self.conv_kernel**2
        self._style_gain = sg2._fan_in_gain(fan_in) if self.is_torgb else 1.0  # toRGB is not demodulated

        self.affine = _style_affine(w_dim, in_channels)
        kernel_shape = [out_channels, in_channels, self.conv_kernel, self.conv_kernel]
        self.weight = nn.Parameter(torch.randn(kernel_shape))
        self.bias = sg2._filled([out_channels])
        self.register_buffer("magnitude_ema", torch.tensor(1.0))

        def taps(factor: int) -> int:
            return filter_size * factor if factor > 1 and not self.is_torgb else 1

        # Up to the high rate, keeping the input band; back down, keeping the output band.
        self.up_factor = _whole_ratio(self.tmp_sampling_rate, in_sampling_rate)
        self.up_taps = taps(self.up_factor)
        up = design_lowpass_filter(self.up_taps, in_cutoff, 2 * in_half_width, self.tmp_sampling_rate)
        self.register_buffer("up_filter", up)
        self.down_factor = _whole_ratio(self.tmp_sampling_rate, out_sampling_rate)
        self.down_taps = taps(self.down_factor)
        self.down_radial = not self.is_critically_sampled and bool(use_radial_filters)
        down = design_lowpass_filter(self.down_taps, out_cutoff, 2 * out_half_width, self.tmp_sampling_rate,
                                     radial=self.down_radial)  # fmt: skip
        self.register_buffer("down_filter", down)
        self.padding = self._high_rate_padding()

    def _high_rate_padding(self) -> list[int]:
        """Zeros around the upsampled convolution output, ``[left, right, top, bottom]``, so that
        the two filters and the decimation end at exactly ``out_size`` samples."""
        available = (self.in_size + self.conv_kernel - 1) * self.up_factor  # full convolution, upsampled
        wanted = (self.out_size - 1) * self.down_factor + 1 + (self.up_taps - 1) + (self.down_taps - 1)
        missing = wanted - available
        lead = (missing + self.up_factor) // 2
        trail = missing - lead
        return [int(lead[0]), int(trail[0]), int(lead[1]), int(trail[1])]

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False,
                update_emas: bool = False) -> torch.Tensor:  # fmt: skip
        del noise_mode  # StyleGAN3 has no noise inputs; accepted for a uniform signature.
        if update_emas:  # running mean square of the input, which scales it to unit magnitude
            with torch.no_grad():
                batch_power = x.detach().to(torch.float32).square().mean()
                self.magnitude_ema.copy_(torch.lerp(batch_power, self.magnitude_ema, self.magnitude_ema_beta))
        styles = sg2._at_scale(self.affine(w), self._style_gain, torch.float32)

        dtype = sg2._block_dtype(self.use_fp16, force_fp32, x.device)
        kernels = _sample_kernels(self.weight, styles, self.magnitude_ema.rsqrt(), demodulate=not self.is_torgb)
        n, c_in = x.shape[:2]
        y = ops.conv2d_resample(x.to(dtype).reshape(1, n * c_in, *x.shape[2:]),
                                kernels.reshape(-1, *kernels.shape[2:]).to(dtype),
                                padding=self.conv_kernel - 1, groups=n)  # fmt: skip
        y = y.reshape(n, -1, *y.shape[2:])

        slope, gain = (1, 1) if self.is_torgb else (_LRELU_SLOPE, _LRELU_GAIN)
        y = filtered_lrelu(y, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(dtype), up=self.up_factor,
                           down=self.down_factor, padding=self.padding, gain=gain, slope=slope,
                           clamp=self.conv_clamp)  # fmt: skip
        if tuple(y.shape[2:]) != (int(self.out_size[1]), int(self.out_size[0])):
            raise RuntimeError(f"layer produced {list(y.shape[2:])} samples, planned {self.out_size.tolist()}")
        return y

    def extra_repr(self) -> str:
        names = ("w_dim", "is_torgb", "is_critically_sampled", "use_fp16", "in_sampling_rate", "out_sampling_rate",
                 "in_cutoff", "out_cutoff", "in_channels", "out_channels", "in_size", "out_size")  # fmt: skip
        return _with_units([(name, getattr(self, name)) for name in names])


@dataclass(frozen=True)
class _FrequencyPlan:
    """Per-layer numbers of the synthesis network; entry 0 is the input (Fourier features)
    and layer 0's input side, the last entry the toRGB layer."""

    cutoffs: np.ndarray
    half_widths: np.ndarray
    sampling_rates: np.ndarray
    sizes: np.ndarray
    channels: np.ndarray

    @classmethod
    def design(cls, img_resolution: int, img_channels: int, channel_base: int, channel_max: int, num_layers: int,
               num_critical: int, first_cutoff: float, first_stopband: float, last_stopband_rel: float,
               margin_size: int) -> _FrequencyPlan:  # fmt: skip
        """Cutoff ``f_c`` and stopband ``f_t`` move geometrically from the first layer's values to
        the final ones (``f_c`` = half the output resolution) over the non-critical layers and stay
        there; each layer samples at the smallest power of two ``>= 2 f_t`` (at most the output
        resolution), keeps a margin around the image except in the last two layers, and has
        ``channel_base / (2 f_c)`` channels (at most ``channel_max``)."""
        final_cutoff = img_resolution / 2
        final_stopband = final_cutoff * last_stopband_rel
        index = np.arange(num_layers + 1)
        ramp = np.minimum(index / (num_layers - num_critical), 1)  # 0 ... 1, then 1
        cutoffs = np.power(final_cutoff / first_cutoff, ramp) * first_cutoff
        stopbands = np.power(final_stopband / first_stopband, ramp) * first_stopband
        rates = 2.0 ** np.ceil(np.log2(np.minimum(2 * stopbands, img_resolution)))
        half_widths = np.fmax(stopbands, 0.5 * rates) - cutoffs
        sizes = np.where(index >= num_layers - 1, img_resolution, rates + 2 * margin_size).astype(np.float64)
        widths = np.minimum(0.5 * channel_base / cutoffs, channel_max).round()
        channels = np.where(index == num_layers, img_channels, widths).astype(np.float64)
        return cls(cutoffs, half_widths, rates, sizes, channels)

    def layer_kwargs(self, index: int) -> dict[str, Any]:
        """The band-dependent constructor arguments of layer ``index``."""
        before = max(index - 1, 0)
        pick = {"in": before, "out": index}
        kwargs: dict[str, Any] = {}
        for side, k in pick.items():
            kwargs[f"{side}_channels"] = int(self.channels[k])
            kwargs[f"{side}_size"] = int(self.sizes[k])
            kwargs[f"{side}_sampling_rate"] = int(self.sampling_rates[k])
            kwargs[f"{side}_cutoff"] = float(self.cutoffs[k])
            kwargs[f"{side}_half_width"] = float(self.half_widths[k])
        return kwargs


class SynthesisNetwork(sg2._Module):
    """``ws [N, num_ws, w_dim]`` -> image: the Fourier-feature input, ``num_layers`` filtered
    layers and the toRGB layer, each with its own ``w``. The layers are named
    ``L{index}_{size}_{channels}`` (listed in ``layer_names``); the ``num_fp16_res`` highest
    sampling rates may compute in float16 (on CUDA)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                 first_stopband: float = 2**2.1, last_stopband_rel: float = 2**0.3, margin_size: int = 10,
                 output_scale: float = 0.25, num_fp16_res: int = 4, **layer_kwargs: Any):  # fmt: skip
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_layers, self.num_critical, self.num_ws = num_layers, num_critical, num_layers + 2
        self.margin_size, self.output_scale, self.num_fp16_res = margin_size, output_scale, num_fp16_res

        plan = _FrequencyPlan.design(img_resolution, img_channels, channel_base, channel_max, num_layers,
                                     num_critical, first_cutoff, first_stopband, last_stopband_rel,
                                     margin_size)  # fmt: skip
        self.input = SynthesisInput(w_dim, int(plan.channels[0]), int(plan.sizes[0]), plan.sampling_rates[0],
                                    plan.cutoffs[0])  # fmt: skip
        half_precision_above = img_resolution / 2**num_fp16_res
        names = []
        for index, rate in enumerate(plan.sampling_rates):
            flags = {"is_torgb": index == num_layers, "is_critically_sampled": index >= num_layers - num_critical,
                     "use_fp16": bool(rate > half_precision_above)}  # fmt: skip
            layer = SynthesisLayer(w_dim=w_dim, **flags, **plan.layer_kwargs(index), **layer_kwargs)
            names.append(f"L{index}_{int(layer.out_size[0])}_{layer.out_channels}")
            self.add_module(names[-1], layer)
        self.layer_names = names

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False,
                update_emas: bool = False) -> torch.Tensor:  # fmt: skip
        """``noise_mode`` is accepted for StyleGAN2 compatibility (StyleGAN3 has no noise);
        ``force_fp32`` disables float16 (only ever used on CUDA); ``update_emas`` updates the
        layers' ``magnitude_ema`` from this batch."""
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        per_layer = iter(ws.to(torch.float32).unbind(dim=1))
        signal = self.input(next(per_layer))
        run = {"noise_mode": noise_mode, "force_fp32": force_fp32, "update_emas": update_emas}
        for name, w in zip(self.layer_names, per_layer):
            signal = self.get_submodule(name)(signal, w, **run)
        scaled = signal if self.output_scale == 1 else signal * self.output_scale
        return scaled.to(torch.float32)

    def extra_repr(self) -> str:
        names = ("w_dim", "num_ws", "img_resolution", "img_channels", "num_layers", "num_critical", "margin_size",
                 "num_fp16_res")  # fmt: skip
        return _with_units([(name, getattr(self, name)) for name in names])


class Generator(sg2._Module):
    """StyleGAN3 generator: ``G(z, c) -> img`` with ``G.mapping`` and ``G.synthesis``.

    Synthesis settings are given flat (``**synthesis_kwargs``), as in the released pickles."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, **synthesis_kwargs: Any):  # fmt: skip
        super().__init__()
        mapping_args = dict(mapping_kwargs or {})
        self.init_kwargs = sg2._recorded(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            mapping_kwargs=mapping_args, **synthesis_kwargs,
        )  # fmt: skip
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        self.synthesis, self.num_ws = synthesis, synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, synthesis.num_ws, **mapping_args)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_emas: bool = False,
                **synthesis_kwargs: Any) -> torch.Tensor:  # fmt: skip
        """Images for latents ``z`` (and labels ``c``); ``synthesis_kwargs`` (``noise_mode``,
        ``force_fp32``) go to the synthesis network, ``update_emas`` to both networks."""
        truncation = {"truncation_psi": truncation_psi, "truncation_cutoff": truncation_cutoff}
        latents = self.mapping(z, c, update_emas=update_emas, **truncation)
        return self.synthesis(latents, update_emas=update_emas, **synthesis_kwargs)
