"""ganzoo's StyleGAN2 discriminator: residual (or skip/orig) blocks down to a 4×4 head, with a
projection of the embedded label for conditional models.

See :mod:`ganzoo.architectures.stylegan2.networks` for what is kept identical to the
StyleGAN2-ADA PyTorch release.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ganzoo import ops
from ganzoo.architectures.stylegan2.layers import (
    _HALF_POWER,
    LOWPASS_TAPS,
    Conv2dLayer,
    FullyConnectedLayer,
    MappingNetwork,
    _Module,
    _Pyramid,
    _block_layout,
    _blocks,
    _check_architecture,
    _keep_lowpass,
    _recorded,
)


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
