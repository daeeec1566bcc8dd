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

The module, parameter and buffer names match the released pickles', so their state dicts load
with ``load_state_dict(strict=True)``; the filters are buffers (taken from the file when
loading, designed here when a network is built fresh).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ganzoo.architectures.stylegan3.ops import bias_lrelu, design_lowpass_filter, filtered_lrelu

__all__ = [
    "FullyConnectedLayer", "MappingNetwork", "SynthesisInput", "SynthesisLayer",
    "SynthesisNetwork", "Generator", "config_kwargs",
]  # fmt: skip


def config_kwargs(config: str) -> dict[str, Any]:
    """Synthesis settings of the paper's configs: ``"T"`` (translation equivariance) or ``"R"``
    (rotation equivariance: 1x1 convolutions, radial filters, twice the channels). Multiply
    ``channel_base``/``channel_max`` for R yourself when you pass your own."""
    config = config.upper()
    if config == "T":
        return dict(channel_base=32768, channel_max=512)
    if config == "R":
        return dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)
    raise ValueError(f"unknown StyleGAN3 config {config!r}: expected 'T' or 'R'")


def _rms_normalize(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalized learning rate: weights are stored at unit scale (divided by
    ``lr_multiplier``) and scaled at run time by ``lr_multiplier / sqrt(in_features)``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "linear",
        bias: bool = True,
        lr_multiplier: float = 1.0,
        weight_init: float = 1.0,
        bias_init: Any = 0.0,
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) * (weight_init / lr_multiplier))
        if bias:
            start = torch.as_tensor(np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features]).copy())
            self.bias = nn.Parameter(start / lr_multiplier)
        else:
            self.bias = None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = (self.weight * self.weight_gain).to(x.dtype)
        bias = self.bias
        if bias is not None:
            bias = bias.to(x.dtype)
            if self.bias_gain != 1:
                bias = bias * self.bias_gain
        if self.activation == "linear":
            if bias is None:
                return x.matmul(weight.t())
            return torch.addmm(bias.unsqueeze(0), x, weight.t())
        if self.activation != "lrelu":
            raise ValueError(f"unsupported activation {self.activation!r}")
        return bias_lrelu(x.matmul(weight.t()), bias, slope=0.2, gain=math.sqrt(2))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class MappingNetwork(nn.Module):
    """``z`` (and the embedded label ``c``) -> ``w``, broadcast to ``num_ws`` copies, with the
    running mean ``w_avg`` used for the truncation trick."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 2,
        lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.998,
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        self.embed = FullyConnectedLayer(c_dim, w_dim) if c_dim > 0 else None
        widths = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        for index in range(num_layers):
            layer = FullyConnectedLayer(
                widths[index], widths[index + 1], activation="lrelu", lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{index}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            parts.append(_rms_normalize(z.to(torch.float32)))
        if self.c_dim > 0:
            parts.append(_rms_normalize(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for index in range(self.num_layers):
            x = getattr(self, f"fc{index}")(x)
        if update_emas:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            head = slice(None, truncation_cutoff)
            x[:, head] = self.w_avg.lerp(x[:, head], truncation_psi)
        return x

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


class SynthesisInput(nn.Module):
    """Fourier features: ``channels`` sinusoids of fixed random frequencies (inside a disc of
    radius ``bandwidth``) and phases, sampled on a ``size`` grid at ``sampling_rate``, after the
    per-sample rotation and translation predicted by ``affine`` from ``w`` and the user-set
    ``transform`` (a 3x3 matrix applied to the input coordinates), then mixed by ``weight``."""

    def __init__(self, w_dim: int, channels: int, size: Any, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2]).copy()
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth
        # Random directions, with radii spread so that the density falls off towards the band edge.
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        batch = w.shape[0]
        user = self.transform.unsqueeze(0)
        params = self.affine(w)
        params = params / params[:, :2].norm(dim=1, keepdim=True)  # (cos, sin) of a unit rotation
        cos_a, sin_a, shift_x, shift_y = params.unbind(dim=1)
        ones, zeros = torch.ones_like(cos_a), torch.zeros_like(cos_a)
        rotation = torch.stack(
            [cos_a, -sin_a, zeros, sin_a, cos_a, zeros, zeros, zeros, ones], dim=1
        ).reshape(batch, 3, 3)
        translation = torch.stack(
            [ones, zeros, -shift_x, zeros, ones, -shift_y, zeros, zeros, ones], dim=1
        ).reshape(batch, 3, 3)
        transforms = rotation @ translation @ user  # [N, 3, 3]

        # Move the transform onto the sinusoids: shifting coordinates shifts phases, the linear
        # part acts on the frequencies.
        phases = self.phases.unsqueeze(0) + (self.freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = self.freqs @ transforms[:, :2, :2]  # [N, C, 2]
        # Fade out frequencies that the transform pushed past the band (towards Nyquist).
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        # Sample positions of the pixel centres, in units where 1 is one sampling period * rate.
        width, height = int(self.size[0]), int(self.size[1])
        theta = torch.zeros([1, 2, 3], device=w.device)
        theta[0, 0, 0] = 0.5 * width / self.sampling_rate
        theta[0, 1, 1] = 0.5 * height / self.sampling_rate
        grid = torch.nn.functional.affine_grid(theta, [1, 1, height, width], align_corners=False)  # [1, H, W, 2]

        x = torch.einsum("hwk,nck->nhwc", grid[0], freqs)  # [N, H, W, C]
        x = x + phases[:, None, None, :]
        x = torch.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, channels={self.channels}, size={list(self.size)}, "
            f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}"
        )


def _modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    padding: int,
    demodulate: bool,
    input_gain: torch.Tensor | None,
) -> torch.Tensor:
    """Per-sample modulated (and optionally demodulated) convolution as one grouped conv."""
    batch = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if demodulate:
        # Bring weights and styles to unit RMS first, for numerical range (fp16).
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    per_sample = weight.unsqueeze(0) * styles[:, None, :, None, None]  # [N, O, I, kh, kw]
    if demodulate:
        per_sample = per_sample * (per_sample.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
    if input_gain is not None:
        per_sample = per_sample * input_gain.expand(batch, in_channels)[:, None, :, None, None]
    grouped = x.reshape(1, batch * in_channels, *x.shape[2:])
    kernels = per_sample.reshape(batch * out_channels, in_channels, kh, kw).to(x.dtype)
    out = torch.nn.functional.conv2d(grouped, kernels, padding=padding, groups=batch)
    return out.reshape(batch, out_channels, *out.shape[2:])


class SynthesisLayer(nn.Module):
    """One modulated convolution followed by the filtered leaky ReLU (or, for the last layer,
    the 1x1 "toRGB" convolution with bias and clamp only)."""

    def __init__(
        self,
        w_dim: int,
        is_torgb: bool,
        is_critically_sampled: bool,
        use_fp16: bool,
        in_channels: int,
        out_channels: int,
        in_size: Any,
        out_size: Any,
        in_sampling_rate: float,
        out_sampling_rate: float,
        in_cutoff: float,
        out_cutoff: float,
        in_half_width: float,
        out_half_width: float,
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        use_radial_filters: bool = False,
        conv_clamp: float | None = 256,
        magnitude_ema_beta: float = 0.999,
    ):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = bool(is_torgb)
        self.is_critically_sampled = bool(is_critically_sampled)
        self.use_fp16 = bool(use_fp16)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2]).copy()
        self.out_size = np.broadcast_to(np.asarray(out_size), [2]).copy()
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        # The nonlinearity runs at a multiple of the higher of the two rates.
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # Interpolation filter: in_sampling_rate -> tmp_sampling_rate, keeps the input band.
        self.up_factor = int(np.rint(self.tmp_sampling_rate / in_sampling_rate))
        assert in_sampling_rate * self.up_factor == self.tmp_sampling_rate
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not self.is_torgb else 1
        self.register_buffer(
            "up_filter",
            design_lowpass_filter(self.up_taps, in_cutoff, in_half_width * 2, self.tmp_sampling_rate),
        )
        # Antialiasing filter: tmp_sampling_rate -> out_sampling_rate, keeps the output band.
        self.down_factor = int(np.rint(self.tmp_sampling_rate / out_sampling_rate))
        assert out_sampling_rate * self.down_factor == self.tmp_sampling_rate
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not self.is_torgb else 1
        self.down_radial = bool(use_radial_filters and not self.is_critically_sampled)
        self.register_buffer(
            "down_filter",
            design_lowpass_filter(
                self.down_taps, out_cutoff, out_half_width * 2, self.tmp_sampling_rate, radial=self.down_radial
            ),
        )

        # Padding of the upsampled signal so that the result has exactly out_size samples.
        total = (self.out_size - 1) * self.down_factor + 1
        total = total - (self.in_size + self.conv_kernel - 1) * self.up_factor
        total = total + self.up_taps + self.down_taps - 2
        before = (total + self.up_factor) // 2
        after = total - before
        self.padding = [int(before[0]), int(after[0]), int(before[1]), int(after[1])]

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        force_fp32: bool = False,
        update_emas: bool = False,
    ) -> torch.Tensor:
        del noise_mode  # StyleGAN3 has no noise inputs; accepted for a uniform signature.
        if update_emas:
            with torch.no_grad():
                current = x.detach().to(torch.float32).square().mean()
                self.magnitude_ema.copy_(current.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel**2))

        half = self.use_fp16 and not force_fp32 and x.device.type == "cuda"
        dtype = torch.float16 if half else torch.float32
        x = _modulated_conv2d(
            x.to(dtype), self.weight, styles, padding=self.conv_kernel - 1,
            demodulate=not self.is_torgb, input_gain=input_gain,
        )  # fmt: skip
        x = filtered_lrelu(
            x, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(x.dtype),
            up=self.up_factor, down=self.down_factor, padding=self.padding,
            gain=1 if self.is_torgb else math.sqrt(2), slope=1 if self.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )  # fmt: skip
        assert x.dtype == dtype
        assert list(x.shape[2:]) == [int(self.out_size[1]), int(self.out_size[0])], (x.shape, self.out_size)
        return x

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, is_torgb={self.is_torgb}, is_critically_sampled={self.is_critically_sampled}, "
            f"use_fp16={self.use_fp16}, in_sampling_rate={self.in_sampling_rate:g}, "
            f"out_sampling_rate={self.out_sampling_rate:g}, in_cutoff={self.in_cutoff:g}, "
            f"out_cutoff={self.out_cutoff:g}, in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"in_size={list(self.in_size)}, out_size={list(self.out_size)}"
        )


class SynthesisNetwork(nn.Module):
    """``ws [N, num_ws, w_dim]`` -> image: the Fourier-feature input, ``num_layers`` filtered
    layers and the toRGB layer, each with its own ``w``."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_layers: int = 14,
        num_critical: int = 2,
        first_cutoff: float = 2,
        first_stopband: float = 2**2.1,
        last_stopband_rel: float = 2**0.3,
        margin_size: int = 10,
        output_scale: float = 0.25,
        num_fp16_res: int = 4,
        **layer_kwargs: Any,
    ):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res

        # Per-layer frequency plan (index num_layers is the toRGB layer): cutoffs and stopbands
        # grow geometrically until the critically sampled layers at the end.
        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        progress = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** progress
        stopbands = first_stopband * (last_stopband / first_stopband) ** progress
        sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
        sizes = sampling_rates + margin_size * 2
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels

        self.input = SynthesisInput(
            w_dim=w_dim, channels=int(channels[0]), size=int(sizes[0]),
            sampling_rate=sampling_rates[0], bandwidth=cutoffs[0],
        )  # fmt: skip
        self.layer_names = []
        for index in range(num_layers + 1):
            prev = max(index - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim,
                is_torgb=index == num_layers,
                is_critically_sampled=index >= num_layers - num_critical,
                use_fp16=bool(sampling_rates[index] * (2**num_fp16_res) > img_resolution),
                in_channels=int(channels[prev]),
                out_channels=int(channels[index]),
                in_size=int(sizes[prev]),
                out_size=int(sizes[index]),
                in_sampling_rate=int(sampling_rates[prev]),
                out_sampling_rate=int(sampling_rates[index]),
                in_cutoff=float(cutoffs[prev]),
                out_cutoff=float(cutoffs[index]),
                in_half_width=float(half_widths[prev]),
                out_half_width=float(half_widths[index]),
                **layer_kwargs,
            )
            name = f"L{index}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "random",
        force_fp32: bool = False,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """``noise_mode`` is accepted for StyleGAN2 compatibility (StyleGAN3 has no noise);
        ``force_fp32`` disables float16 (only ever used on CUDA); ``update_emas`` updates the
        layers' ``magnitude_ema`` from this batch."""
        assert ws.ndim == 3 and ws.shape[1] == self.num_ws and ws.shape[2] == self.w_dim, ws.shape
        per_layer = ws.to(torch.float32).unbind(dim=1)
        x = self.input(per_layer[0])
        for name, w in zip(self.layer_names, per_layer[1:]):
            x = getattr(self, name)(x, w, noise_mode=noise_mode, force_fp32=force_fp32, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}, num_layers={self.num_layers}, num_critical={self.num_critical}, "
            f"margin_size={self.margin_size}, num_fp16_res={self.num_fp16_res}"
        )


class Generator(nn.Module):
    """StyleGAN3 generator: ``G(z, c) -> img`` with ``G.mapping`` and ``G.synthesis``."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict | None = None,
        **synthesis_kwargs: Any,
    ):
        super().__init__()
        mapping_kwargs = dict(mapping_kwargs or {})
        self.init_kwargs = copy.deepcopy(
            dict(
                z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                img_channels=img_channels, mapping_kwargs=mapping_kwargs, **synthesis_kwargs,
            )
        )  # fmt: skip
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        **synthesis_kwargs: Any,
    ) -> torch.Tensor:
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas
        )
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)
