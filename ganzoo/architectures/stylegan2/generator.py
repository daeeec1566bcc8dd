"""ganzoo's StyleGAN2 generator: the synthesis network and ``G = mapping + synthesis``.

See :mod:`ganzoo.architectures.stylegan2.networks` for what is kept identical to the
StyleGAN2-ADA PyTorch release.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ganzoo import ops
from ganzoo.architectures.stylegan2.layers import (
    _HALF_POWER,
    _NOISE_MODES,
    LOWPASS_TAPS,
    Conv2dLayer,
    MappingNetwork,
    _Module,
    _Pyramid,
    _block_layout,
    _blocks,
    _check_architecture,
    _fan_in_gain,
    _filled,
    _gaussian,
    _keep_lowpass,
    _recorded,
    _scaled_clamp,
    _style_affine,
)


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
