"""The ResNet GANs of Mescheder, Geiger & Nowozin ("Which Training Methods for GANs do actually
Converge?", ICML 2018), written for ganzoo from the description of their four generator and
discriminator pairs (LMescheder/GAN_stability, ``gan_training/models/``, MIT).

One :class:`Generator` and one :class:`Discriminator` class cover the four variants; the
constructor argument ``arch`` selects one:

============  ==============================  ========================================================
``arch``      released for                    layout
============  ==============================  ========================================================
``resnet``    CelebA-HQ 1024²                 ``nn.Sequential`` ``resnet`` of blocks and 2x resamplers,
                                              channels ``min(nfilter * 2**k, nfilter_max)``, 4x4 base
``resnet2``   ImageNet 128², class-cond.      blocks ``resnet_{stage}_{0,1}``, six stages, base
                                              ``size // 32``, L2-normalised class embedding
``resnet3``   LSUN 256²                       one block per stage, base ``size // 64``, 7x7 image convs
``resnet4``   CelebA 256²                     as ``resnet3`` with a seventh stage at full resolution
============  ==============================  ========================================================

Interoperability with that code: the constructor arguments (``z_dim, nlabels, size, embed_size,
nfilter, nfilter_max``) mean the same, the module and tensor names are the same (so the state
dicts of its checkpoints, with the ``module.`` prefix of ``nn.DataParallel`` removed, load with
``strict=True``) and so are the numerics (to float rounding). ``G(z, y)`` maps latents ``[N,
z_dim]`` and integer labels ``[N]`` to images ``[N, 3, size, size]`` in [-1, 1] (tanh); ``D(x,
y)`` returns the logit of class ``y`` for each image, shape ``[N]``. Every network keeps the
JSON-able arguments it was built with in ``init_kwargs`` (``arch`` included), which is what
ganzoo's ``config.json`` stores and builds from (``cls(**init_kwargs)``).

Residual block, shared by all four: with ``a`` the leaky ReLU of slope 0.2, a block computes
``s(x) + 0.1 * conv_1(a(conv_0(a(x))))`` where both convolutions are 3x3 and the hidden width is
``min(fin, fout)``; ``s`` is the identity, or a bias-free 1x1 convolution ``conv_s`` when the
width changes. Upsampling is nearest-neighbour x2; downsampling is a 3x3 average pool of stride
2 with zero padding counted in the mean.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ARCHS", "RESNET_CAP_DEFAULT", "Discriminator", "Generator", "ResBlock", "block_names", "labels_from_onehot",
           "stage_layout"]  # fmt: skip

#: The four variants, by the names GAN_stability's configs use (``generator.name``).
ARCHS = ("resnet", "resnet2", "resnet3", "resnet4")

#: Default width cap of the ``resnet`` variant when none is given (GAN_stability's constructors'
#: defaults differ between G and D); the other variants take no cap.
RESNET_CAP_DEFAULT = {"G": 512, "D": 1024}
_SLOPE = 0.2
_RESIDUAL_GAIN = 0.1


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, _SLOPE)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2)  # nearest


def _down(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=2, padding=1)


class ResBlock(nn.Module):
    """The pre-activation residual block (see the module docstring); tensor names ``conv_0``,
    ``conv_1`` and, when ``fin != fout``, ``conv_s``."""

    def __init__(self, fin: int, fout: int, fhidden: int | None = None, is_bias: bool = True):
        super().__init__()
        width = min(fin, fout) if fhidden is None else fhidden
        self.fin, self.fout, self.fhidden = fin, fout, width
        self.learned_shortcut = fin != fout
        self.conv_0 = nn.Conv2d(fin, width, 3, padding=1)
        self.conv_1 = nn.Conv2d(width, fout, 3, padding=1, bias=is_bias)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.conv_1(_act(self.conv_0(_act(x))))
        shortcut = self.conv_s(x) if self.learned_shortcut else x
        return shortcut + _RESIDUAL_GAIN * residual


# ----------------------------------------------------------------------------------------------
# The named-stage variants (resnet2, resnet3, resnet4), as data


@dataclass(frozen=True)
class _Plan:
    """One named-stage variant. Widths are multiples of ``nfilter``.

    Attributes:
        divisor: the base resolution is ``size // divisor`` (``divisor`` = 2 ** number of x2
            resamplings on the way).
        g_stages: the generator's stages, lowest resolution first, each a list of blocks
            ``(fin, fout)``; G upsamples before every stage but the first.
        g_up_last: G upsamples once more after its last stage (``resnet3``).
        d_stages: the discriminator's stages from the image inwards; D pools before every
            stage from ``d_first_pool`` on.
        d_first_pool: index of the first stage D pools before (0: pool before every stage).
        kernel: the side of the image-space convolutions ``conv_img`` (G's last, D's first).
        unit_embedding: G divides the class embedding by its L2 norm.
    """

    divisor: int
    g_stages: tuple[tuple[tuple[int, int], ...], ...]
    g_up_last: bool
    d_stages: tuple[tuple[tuple[int, int], ...], ...]
    d_first_pool: int
    kernel: int
    unit_embedding: bool

    @property
    def g_in(self) -> int:
        return self.g_stages[0][0][0]

    @property
    def d_out(self) -> int:
        return self.d_stages[-1][-1][1]


def _pairs(*pairs: tuple[int, int]) -> tuple[tuple[tuple[int, int], ...], ...]:
    """One block per stage."""
    return tuple((pair,) for pair in pairs)


_PLANS = {
    "resnet2": _Plan(
        divisor=32,
        g_stages=(((16, 16), (16, 16)), ((16, 16), (16, 16)), ((16, 8), (8, 8)), ((8, 4), (4, 4)),
                  ((4, 2), (2, 2)), ((2, 1), (1, 1))),
        g_up_last=False,
        d_stages=(((1, 1), (1, 2)), ((2, 2), (2, 4)), ((4, 4), (4, 8)), ((8, 8), (8, 16)),
                  ((16, 16), (16, 16)), ((16, 16), (16, 16))),
        d_first_pool=1, kernel=3, unit_embedding=True,
    ),
    "resnet3": _Plan(
        divisor=64,
        g_stages=_pairs((32, 16), (16, 16), (16, 8), (8, 4), (4, 2), (2, 1)),
        g_up_last=True,
        d_stages=_pairs((1, 2), (2, 4), (4, 8), (8, 16), (16, 16), (16, 32)),
        d_first_pool=0, kernel=7, unit_embedding=False,
    ),
    "resnet4": _Plan(
        divisor=64,
        g_stages=_pairs((16, 16), (16, 16), (16, 8), (8, 4), (4, 2), (2, 1), (1, 1)),
        g_up_last=False,
        d_stages=_pairs((1, 1), (1, 2), (2, 4), (4, 8), (8, 16), (16, 16), (16, 16)),
        d_first_pool=1, kernel=7, unit_embedding=False,
    ),
}  # fmt: skip


def stage_layout(arch: str) -> tuple[int, int, int]:
    """``(divisor, g_in, d_out)`` of a named-stage variant: the base resolution is ``size //
    divisor``, G's ``fc`` makes ``g_in * nfilter`` channels there and D's ``fc`` reads ``d_out *
    nfilter`` channels there (what a reader infers ``size`` from)."""
    plan = _PLANS[arch]
    return plan.divisor, plan.g_in, plan.d_out


def block_names(stages: tuple[tuple[tuple[int, int], ...], ...]) -> list[list[str]]:
    """``resnet_{stage}_{index}`` for every block of ``stages``, grouped by stage."""
    return [[f"resnet_{i}_{j}" for j in range(len(stage))] for i, stage in enumerate(stages)]


def _check_common(arch: Any, nlabels: Any, size: Any, embed_size: Any, nfilter: Any) -> None:
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {arch!r}")
    for name, value in (("nlabels", nlabels), ("size", size), ("embed_size", embed_size), ("nfilter", nfilter)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")


def _base(arch: str, size: int) -> int:
    """The side of the lowest-resolution feature map for images of side ``size``."""
    if arch == "resnet":
        steps = size // 4
        if size % 4 or steps & (steps - 1):
            raise ValueError(f"arch 'resnet' needs size = 4 * 2**k, not {size}")
        return 4
    divisor = _PLANS[arch].divisor
    if size % divisor:
        raise ValueError(f"arch {arch!r} needs a size that is a multiple of {divisor}, not {size}")
    return size // divisor


def _resnet_depth(size: int) -> int:
    """Number of x2 resamplings between 4x4 and ``size`` (variant ``resnet``)."""
    return (size // 4).bit_length() - 1


def _recorded_kwargs(arch: str, role: str, nfilter_max: int | None, **kwargs: Any) -> tuple[dict, int | None]:
    """``init_kwargs`` and the effective width cap (``resnet`` only; the cap of the others is
    recorded when given, and has no effect, as in GAN_stability)."""
    cap = nfilter_max
    if arch == "resnet":
        cap = RESNET_CAP_DEFAULT[role] if nfilter_max is None else nfilter_max
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ValueError(f"nfilter_max must be a positive integer, not {cap!r}")
    recorded = {"arch": arch, **kwargs}
    if cap is not None:
        recorded["nfilter_max"] = cap
    return copy.deepcopy(recorded), cap


def _freeze(module: nn.Module) -> None:
    """Turns ``module``'s parameters into buffers of the same names (frozen, still saved)."""
    for name, tensor in list(module._parameters.items()):
        if tensor is not None:  # an absent bias stays an absent parameter
            del module._parameters[name]
            module.register_buffer(name, tensor.detach())


def labels_from_onehot(c: torch.Tensor) -> torch.Tensor:
    """Integer labels ``[N]`` from ganzoo's one-hot classes ``[N, K]``; ``[N, 0]`` gives label 0
    (the one label of a model with ``nlabels == 1``)."""
    if c.ndim != 2:
        raise ValueError(f"classes must be [N, K] one-hot rows, not shape {list(c.shape)}")
    if c.shape[1] == 0:
        return torch.zeros(c.shape[0], dtype=torch.long, device=c.device)
    return c.argmax(dim=1)


def _as_labels(y: torch.Tensor, n: int, nlabels: int) -> torch.Tensor:
    """Labels ``[N]`` (integers); a float ``[N, nlabels]`` (ganzoo's one-hot ``c``) or ``[N, 0]``
    is turned into labels too."""
    if torch.is_floating_point(y):
        y = labels_from_onehot(y)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape [{n}], not {list(y.shape)}")
    return y.long()


# ----------------------------------------------------------------------------------------------
# Networks


class Generator(nn.Module):
    """``G(z, y) -> images [N, 3, size, size]`` in [-1, 1].

    Args:
        z_dim: latent size.
        nlabels: number of classes (1 for the unconditional releases).
        size: image side.
        embed_size: size of the class embedding ``embedding.weight [nlabels, embed_size]``.
        nfilter: base width (the width at full resolution).
        nfilter_max: width cap of ``arch='resnet'`` (default 512); the others accept and ignore it.
        arch: ``'resnet'``, ``'resnet2'``, ``'resnet3'`` or ``'resnet4'``.

    ``y`` is integer labels ``[N]``. As in GAN_stability, a float ``y`` of shape ``[N,
    embed_size]`` is taken as the class embedding itself (interpolating between classes).
    """

    def __init__(self, z_dim: int, nlabels: int, size: int, embed_size: int = 256, nfilter: int = 64,
                 nfilter_max: int | None = None, *, arch: str):  # fmt: skip
        super().__init__()
        _check_common(arch, nlabels, size, embed_size, nfilter)
        if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim < 1:
            raise ValueError(f"z_dim must be a positive integer, not {z_dim!r}")
        base = _base(arch, size)
        self.init_kwargs, cap = _recorded_kwargs(arch, "G", nfilter_max, z_dim=z_dim, nlabels=nlabels, size=size,
                                                 embed_size=embed_size, nfilter=nfilter)  # fmt: skip
        self.arch, self.z_dim, self.nlabels, self.size, self.embed_size = arch, z_dim, nlabels, size, embed_size
        self.nf, self.s0 = nfilter, base
        nf = nfilter

        if arch == "resnet":
            depth = _resnet_depth(size)
            width = [min(nf * 2**k, cap) for k in range(depth + 1)]  # width at 4 * 2**(depth-k)
            self.nf0 = width[depth]
            self.unit_embedding, self.up_last = True, False
        else:
            plan = _PLANS[arch]
            self.nf0 = plan.g_in * nf
            self.unit_embedding, self.up_last = plan.unit_embedding, plan.g_up_last

        self.embedding = nn.Embedding(nlabels, embed_size)
        self.fc = nn.Linear(z_dim + embed_size, self.nf0 * base * base)
        if arch == "resnet":
            layers: list[nn.Module] = []
            for k in range(depth, 0, -1):  # from 4x4 up
                layers += [ResBlock(width[k], width[k - 1]), nn.Upsample(scale_factor=2)]
            layers.append(ResBlock(nf, nf))
            self.resnet = nn.Sequential(*layers)
            self.stages: list[list[str]] = []
            kernel = 3
        else:
            self.stages = block_names(plan.g_stages)
            for names, blocks in zip(self.stages, plan.g_stages):
                for name, (fin, fout) in zip(names, blocks):
                    setattr(self, name, ResBlock(fin * nf, fout * nf))
            kernel = plan.kernel
        self.conv_img = nn.Conv2d(nf, 3, kernel, padding=kernel // 2)

    def blocks_by_resolution(self) -> list[tuple[int, list[tuple[str, ResBlock]]]]:
        """G's residual blocks grouped by the resolution they work at, lowest first:
        ``[(resolution, [(name, block), ...]), ...]`` (names as in the state dict)."""
        groups: dict[int, list[tuple[str, ResBlock]]] = {}
        if self.arch == "resnet":
            blocks = [(f"resnet.{i}", m) for i, m in enumerate(self.resnet) if isinstance(m, ResBlock)]
            for k, (name, block) in enumerate(blocks):
                groups.setdefault(self.s0 << k, []).append((name, block))
        else:
            for i, names in enumerate(self.stages):
                groups.setdefault(self.s0 << i, []).extend((name, getattr(self, name)) for name in names)
        return sorted(groups.items())

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = z.shape[0]
        if torch.is_floating_point(y):
            if y.shape != (n, self.embed_size):
                raise ValueError(f"a float y is a class embedding [{n}, {self.embed_size}], not {list(y.shape)}")
            embed = y  # given directly (GAN_stability's interpolation between classes)
        else:
            embed = self.embedding(_as_labels(y, n, self.nlabels))
        if self.unit_embedding:
            embed = embed / torch.linalg.vector_norm(embed, dim=1, keepdim=True)
        h = self.fc(torch.cat([z, embed], dim=1)).view(n, self.nf0, self.s0, self.s0)
        if self.arch == "resnet":
            h = self.resnet(h)
        else:
            for i, names in enumerate(self.stages):
                if i:
                    h = _up(h)
                for name in names:
                    h = getattr(self, name)(h)
            if self.up_last:
                h = _up(h)
        return torch.tanh(self.conv_img(_act(h)))


class Discriminator(nn.Module):
    """``D(x, y) -> [N]``: the logit of class ``y[i]`` for image ``x[i]`` (``fc`` has one output
    per class).

    Args:
        z_dim: accepted for GAN_stability's call signature; unused.
        nlabels: number of classes.
        size: image side.
        embed_size: recorded (D has no embedding; GAN_stability's D keeps it as an attribute).
        nfilter: width of the first (full-resolution) layer.
        nfilter_max: width cap of ``arch='resnet'`` (default 1024); the others ignore it.
        arch: ``'resnet'``, ``'resnet2'``, ``'resnet3'`` or ``'resnet4'``.
        freeze_layers: ganzoo's FreezeD: the first ``freeze_layers`` convolutions from the image
            (:meth:`layers_from_image` order) keep their weights as buffers (same names), so
            no optimizer moves them; 0 (the default, not recorded) freezes nothing.

    ``y`` is integer labels ``[N]``; ganzoo's float one-hot rows ``[N, nlabels]`` (or ``[N, 0]``
    for class 0) are accepted as well.
    """

    def __init__(self, z_dim: int | None = None, nlabels: int | None = None, size: int | None = None,
                 embed_size: int = 256, nfilter: int = 64, nfilter_max: int | None = None, *, arch: str,
                 freeze_layers: int = 0):  # fmt: skip
        super().__init__()
        _check_common(arch, nlabels, size, embed_size, nfilter)
        base = _base(arch, size)
        extra = {} if z_dim is None else {"z_dim": z_dim}
        if freeze_layers:
            extra["freeze_layers"] = int(freeze_layers)
        self.init_kwargs, cap = _recorded_kwargs(arch, "D", nfilter_max, nlabels=nlabels, size=size,
                                                 embed_size=embed_size, nfilter=nfilter, **extra)  # fmt: skip
        self.arch, self.nlabels, self.size, self.embed_size = arch, nlabels, size, embed_size
        self.nf, self.s0 = nfilter, base
        nf = nfilter

        if arch == "resnet":
            depth = _resnet_depth(size)
            width = [min(nf * 2**k, cap) for k in range(depth + 1)]  # width after k poolings
            self.nf0 = width[depth]
            kernel = 3
        else:
            plan = _PLANS[arch]
            self.nf0 = plan.d_out * nf
            kernel = plan.kernel
        self.conv_img = nn.Conv2d(3, nf, kernel, padding=kernel // 2)
        if arch == "resnet":
            layers: list[nn.Module] = [ResBlock(nf, nf)]
            for k in range(depth):
                layers += [nn.AvgPool2d(3, stride=2, padding=1), ResBlock(width[k], width[k + 1])]
            self.resnet = nn.Sequential(*layers)
            self.stages: list[list[str]] = []
            self.first_pool = 0
        else:
            self.stages = block_names(plan.d_stages)
            self.first_pool = plan.d_first_pool
            for names, blocks in zip(self.stages, plan.d_stages):
                for name, (fin, fout) in zip(names, blocks):
                    setattr(self, name, ResBlock(fin * nf, fout * nf))
        self.fc = nn.Linear(self.nf0 * base * base, nlabels)
        layers = [conv for _, group in self.layers_from_image() for conv in group]
        if not 0 <= int(freeze_layers) <= len(layers):
            raise ValueError(f"freeze_layers must be from 0 to {len(layers)}, not {freeze_layers!r}")
        for conv in layers[: int(freeze_layers)]:
            _freeze(conv)

    def layers_from_image(self) -> list[tuple[int, list[nn.Module]]]:
        """D's convolutions from the image inwards, grouped by the resolution they read:
        ``[(resolution, [conv_img, resnet_0_0.conv_0, ...]), ...]`` (the ``fc`` head is not
        counted). Within a block: ``conv_0``, ``conv_1``, then ``conv_s`` when it has one."""
        groups: dict[int, list[nn.Module]] = {self.size: [self.conv_img]}
        if self.arch == "resnet":
            blocks = [m for m in self.resnet if isinstance(m, ResBlock)]
            located = [(self.size >> k, block) for k, block in enumerate(blocks)]
        else:
            located = []
            pools = 0
            for i, names in enumerate(self.stages):
                pools += i >= self.first_pool
                located += [(self.size >> pools, getattr(self, name)) for name in names]
        for res, block in located:
            convs = [block.conv_0, block.conv_1] + ([block.conv_s] if block.learned_shortcut else [])
            groups.setdefault(res, []).extend(convs)
        return sorted(groups.items(), key=lambda item: -item[0])

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of every class, ``[N, nlabels]``."""
        h = self.conv_img(x)
        if self.arch == "resnet":
            h = self.resnet(h)
        else:
            for i, names in enumerate(self.stages):
                if i >= self.first_pool:
                    h = _down(h)
                for name in names:
                    h = getattr(self, name)(h)
        return self.fc(_act(h.reshape(x.shape[0], -1)))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        labels = _as_labels(y, x.shape[0], self.nlabels)
        return self.logits(x).gather(1, labels.view(-1, 1)).squeeze(1)
