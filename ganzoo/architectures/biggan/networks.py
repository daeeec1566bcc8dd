"""ganzoo's BigGAN generator and discriminator, interoperable with the BigGAN-PyTorch release.

The networks of Brock, Donahue & Simonyan, "Large Scale GAN Training for High Fidelity Natural
Image Synthesis" (ICLR 2019), as ajbrock/BigGAN-PyTorch (MIT) builds them in its ``BigGAN.py``
and ``layers.py``. Written for ganzoo; what is kept identical is the interface: constructor
arguments and their defaults (the release's ``config`` dict builds them: keys that do not shape a
network, such as learning rates, are accepted and ignored), module and tensor names (``linear``,
``blocks.{i}.{j}.conv1``, ``bn1.gain``, ``output_layer.2``, ``shared.weight``, ``embed``), the
spectral norm's ``weight`` with its ``u0``/``sv0`` buffers, the conditional batch norm's
``stored_mean``/``stored_var``, attention's ``theta``/``phi``/``g``/``o``/``gamma``, the forward
signatures ``G(z, G.shared(y))`` and ``D(x, y)``, and the numerics, in eval and in train mode
(those of the layers: :mod:`ganzoo.architectures.biggan.layers`).

The optimizers the release builds inside its networks are not built here: training is ganzoo's
loop's job. ``init_kwargs`` records what a network was built with (JSON-able).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ganzoo.architectures.biggan.layers import (  # the layers are also imported from here
    Attention,
    DBlock,
    GBlock,
    SNConv2d,
    SNEmbedding,
    SNLinear,
    _SpectralNorm,
    _Standing,
    _check_choice,
    _conv_factory,
    _initialize,
    _linear_factory,
    bn,
    ccbn,
)

__all__ = [
    "Attention", "DBlock", "Discriminator", "GBlock", "Generator", "RELEASE_CONFIG_KEYS", "SNConv2d",
    "SNEmbedding", "SNLinear", "bn", "ccbn", "discriminator_layout", "freeze", "generator_layout",
    "latent_size", "output_resolution", "parse_attention", "standing_statistics",
]  # fmt: skip

# Every key of the release's ``config`` dict (its argument parser's options, plus the entries
# train.py derives: resolution, n_classes and the activation modules), so ``cls(**config)``
# works as it does upstream; keys that shape neither network are accepted and ignored.
RELEASE_CONFIG_KEYS = frozenset("""
    BN_eps D_B1 D_B2 D_activation D_attn D_ch D_depth D_fp16 D_init D_kernel_size D_lr
    D_mixed_precision D_nl D_ortho D_param D_wide G_B1 G_B2 G_activation G_attn G_batch_size G_ch
    G_depth G_eval_mode G_fp16 G_init G_kernel_size G_lr G_mixed_precision G_nl G_ortho G_param
    G_shared SN_eps accumulate_stats adam_eps augment base_root batch_size bottom_width
    config_from_name cross_replica data_root dataset dim_z ema ema_decay ema_start experiment_name
    hashname hier load_in_mem load_weights log_D_spectra log_G_spectra logs_root logstyle model mybn
    n_classes name_suffix no_fid no_optim norm_style num_D_SV_itrs num_D_SVs num_D_accumulations
    num_D_steps num_G_SV_itrs num_G_SVs num_G_accumulations num_best_copies num_epochs
    num_inception_images num_save_copies num_standing_accumulations num_workers output_dim parallel
    pbar pin_memory resolution resume sample_inception_metrics sample_interps sample_npz
    sample_num_npz sample_random sample_sheet_folder_num sample_sheets sample_trunc_curves
    samples_root save_every seed shared_dim shuffle skip_init split_D sv_log_interval test_every
    toggle_grads use_ema use_multiepoch_sampler weights_root which_best which_train_fn z_var
""".split())  # fmt: skip

# The activation names of the release (its ``--G_nl``/``--D_nl``): all ReLU. In-place or not
# makes no difference to the values, so ganzoo always applies the out-of-place one.
ACTIVATIONS = ("relu", "inplace_relu", "ir")
INIT_STYLES = ("ortho", "N02", "glorot", "xavier")

# Channel multipliers of each block's output, from the lowest resolution up (G) or from the image
# inwards (D); a block's input is the previous block's output (D: RGB first).
_G_WIDTHS = {
    32: (4, 4, 4),
    64: (16, 8, 4, 2),
    128: (16, 8, 4, 2, 1),
    256: (16, 8, 8, 4, 2, 1),
    512: (16, 8, 8, 4, 2, 1, 1),
}
_D_WIDTHS = {
    32: (4, 4, 4, 4),
    64: (1, 2, 4, 8, 16),
    128: (1, 2, 4, 8, 16, 16),
    256: (1, 2, 4, 8, 8, 16, 16),
}
# The resolution each D block is labelled with (what D_attn names): the release labels all four
# blocks of its 32x32 D with 16, and the last two blocks of the others with 4.
_D_LABELS = {
    32: (16, 16, 16, 16),
    64: (32, 16, 8, 4, 4),
    128: (64, 32, 16, 8, 4, 4),
    256: (128, 64, 32, 16, 8, 4, 4),
}
_D_POOLED = {32: 2}  # blocks that halve the resolution (the others: all but the last)


def parse_attention(spec: Any) -> frozenset[int]:
    """The resolutions named by an attention setting: ``'64'``, ``'32_64'``, ``'0'`` (none), or
    an int."""
    if isinstance(spec, bool) or not isinstance(spec, (str, int)):
        raise ValueError(f"attention must be a string such as '64' or '32_64', not {spec!r}")
    try:
        return frozenset(int(part) for part in str(spec).split("_"))
    except ValueError:
        raise ValueError(f"attention {spec!r} is not resolutions joined by '_' (e.g. '32_64')") from None


def generator_layout(G_ch: int, resolution: int) -> list[tuple[int, int, int]]:
    """``(in_channels, out_channels, output resolution label)`` of each generator block."""
    if resolution not in _G_WIDTHS:
        raise ValueError(f"BigGAN generator resolution must be one of {sorted(_G_WIDTHS)}, not {resolution!r}")
    widths = _G_WIDTHS[resolution]
    ins = (widths[0],) + widths[:-1]
    return [(G_ch * a, G_ch * b, 8 << i) for i, (a, b) in enumerate(zip(ins, widths))]


def discriminator_layout(D_ch: int, resolution: int) -> list[tuple[int, int, bool, int]]:
    """``(in_channels, out_channels, downsamples, resolution label)`` of each discriminator block."""
    if resolution not in _D_WIDTHS:
        raise ValueError(f"BigGAN discriminator resolution must be one of {sorted(_D_WIDTHS)}, not {resolution!r}")
    widths = [D_ch * w for w in _D_WIDTHS[resolution]]
    ins = [3] + widths[:-1]
    pooled = _D_POOLED.get(resolution, len(widths) - 1)
    return [(a, b, i < pooled, label) for i, (a, b, label) in enumerate(zip(ins, widths, _D_LABELS[resolution]))]


def _ignored_keys(owner: str, extra: dict[str, Any]) -> None:
    unknown = sorted(set(extra) - RELEASE_CONFIG_KEYS)
    if unknown:
        raise TypeError(f"{owner}: unexpected keyword arguments {', '.join(unknown)}")


def _refuse_unsupported(owner: str, extra: dict[str, Any]) -> None:
    for key in ("cross_replica", "mybn"):
        if extra.get(key):
            raise ValueError(f"{owner}: {key}=True (synchronized/standing-stat batch norm modules) is not supported")
    for key in ("G_depth", "D_depth"):
        if extra.get(key, 1) != 1:
            raise ValueError(f"{owner}: {key}={extra[key]!r} is BigGAN-deep's setting; these are the BigGAN networks")


def _activation(name: str, what: str) -> nn.Module:
    _check_choice(what, name, ACTIVATIONS)
    return nn.ReLU(inplace=False)


# ----------------------------------------------------------------------------------------------
# Networks


class Generator(nn.Module):
    """BigGAN's generator: ``G(z, G.shared(y))`` -> images ``[N, 3, H, W]`` in [-1, 1].

    ``G.shared`` maps class indices to the shared embedding (``G_shared``), else passes them on
    (each BN then has its own class embeddings). With ``hier``, ``z`` is split into one chunk per
    block plus one for the first linear layer, each block's chunk appended to the embedding;
    ``dim_z`` is then rounded down to a multiple of the number of chunks (``G.dim_z``).
    """

    def __init__(self, G_ch: int = 64, dim_z: int = 128, bottom_width: int = 4, resolution: int = 128,
                 G_attn: Any = "64", n_classes: int = 1000, num_G_SVs: int = 1, num_G_SV_itrs: int = 1,
                 G_shared: bool = True, shared_dim: int = 0, hier: bool = False, G_activation: str = "relu",
                 BN_eps: float = 1e-5, SN_eps: float = 1e-12, G_init: str = "ortho", skip_init: bool = False,
                 G_param: str = "SN", norm_style: str = "bn", **release_config: Any) -> None:  # fmt: skip
        super().__init__()
        _ignored_keys("Generator", release_config)
        _refuse_unsupported("Generator", release_config)
        if "G_nl" in release_config and G_activation == "relu":
            G_activation = release_config["G_nl"]  # the parser's name for the same setting
        _check_choice("G_init", G_init, INIT_STYLES)
        if hier and not G_shared:
            raise ValueError("Generator: hier=True needs G_shared=True (the latent chunks join the shared embedding)")
        self.init_kwargs = copy.deepcopy(dict(
            G_ch=G_ch, dim_z=dim_z, bottom_width=bottom_width, resolution=resolution, G_attn=G_attn,
            n_classes=n_classes, num_G_SVs=num_G_SVs, num_G_SV_itrs=num_G_SV_itrs, G_shared=G_shared,
            shared_dim=shared_dim, hier=hier, G_activation=G_activation, BN_eps=BN_eps, SN_eps=SN_eps,
            G_init=G_init, G_param=G_param, norm_style=norm_style,
        ))  # fmt: skip
        layout = generator_layout(G_ch, resolution)
        attention = parse_attention(G_attn)
        self.ch, self.bottom_width, self.resolution, self.n_classes = G_ch, bottom_width, resolution, n_classes
        self.G_shared, self.hier, self.G_param = G_shared, hier, G_param
        self.shared_dim = shared_dim if shared_dim > 0 else dim_z
        self.num_slots = len(layout) + 1 if hier else 1
        self.z_chunk_size = dim_z // self.num_slots if hier else 0
        self.dim_z = self.z_chunk_size * self.num_slots if hier else dim_z
        self.img_resolution = bottom_width << len(layout)
        self.activation = _activation(G_activation, "G_activation")

        spectral = G_param == "SN"
        make_conv = _conv_factory(spectral, num_G_SVs, num_G_SV_itrs, SN_eps)
        make_linear = _linear_factory(spectral, num_G_SVs, num_G_SV_itrs, SN_eps)
        if G_shared:
            bn_input = self.shared_dim + self.z_chunk_size

            def make_bn_linear(cin: int, cout: int) -> nn.Module:
                return make_linear(cin, cout, bias=False)
        else:
            bn_input = n_classes
            make_bn_linear = nn.Embedding  # embeddings are never spectrally normalized in G

        def make_bn(channels: int) -> ccbn:
            return ccbn(channels, bn_input, make_bn_linear, eps=BN_eps, norm_style=norm_style)

        self.shared = nn.Embedding(n_classes, self.shared_dim) if G_shared else nn.Identity()
        self.linear = make_linear(self.dim_z // self.num_slots, layout[0][0] * bottom_width**2)
        blocks = []
        for cin, cout, label in layout:
            stage = [GBlock(cin, cout, make_conv, make_bn, self.activation)]
            if label in attention:
                stage.append(Attention(cout, make_conv))
            blocks.append(nn.ModuleList(stage))
        self.blocks = nn.ModuleList(blocks)
        last = layout[-1][1]
        self.output_layer = nn.Sequential(bn(last, eps=BN_eps), self.activation, make_conv(last, 3))
        if not skip_init:
            _initialize(self, G_init)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Images from latents ``z`` ``[N, dim_z]`` and ``y = G.shared(class indices)``."""
        if self.hier:
            chunks = torch.split(z, self.z_chunk_size, 1)
            z = chunks[0]
            conditions = [torch.cat([y, chunk], 1) for chunk in chunks[1:]]
        else:
            conditions = [y] * len(self.blocks)
        h = self.linear(z)
        h = h.view(h.size(0), -1, self.bottom_width, self.bottom_width)
        for stage, condition in zip(self.blocks, conditions):
            for layer in stage:
                h = layer(h, condition)
        return torch.tanh(self.output_layer(h))


class Discriminator(nn.Module):
    """BigGAN's projection discriminator: ``D(x, y)`` -> logits ``[N, output_dim]``.

    ``y``: class indices ``[N]``, or one-hot (soft) rows ``[N, n_classes]``; None leaves out the
    class projection (the release always takes a class).

    ``freeze_layers`` is ganzoo's FreezeD (not a release setting; recorded only when non-zero):
    the first ``freeze_layers`` layers of :meth:`layers_from_image` are frozen by
    :func:`freeze` (parameters become buffers of the same names, spectral-norm vectors stop
    updating), so the state dict keeps the release's names and no optimizer moves them.
    """

    def __init__(self, D_ch: int = 64, D_wide: bool = True, resolution: int = 128, D_attn: Any = "64",
                 n_classes: int = 1000, num_D_SVs: int = 1, num_D_SV_itrs: int = 1, D_activation: str = "relu",
                 SN_eps: float = 1e-12, output_dim: int = 1, D_init: str = "ortho", skip_init: bool = False,
                 D_param: str = "SN", freeze_layers: int = 0, **release_config: Any) -> None:  # fmt: skip
        super().__init__()
        _ignored_keys("Discriminator", release_config)
        _refuse_unsupported("Discriminator", release_config)
        if "D_nl" in release_config and D_activation == "relu":
            D_activation = release_config["D_nl"]
        _check_choice("D_init", D_init, INIT_STYLES)
        _check_choice("D_param", D_param, ("SN",))  # the release builds D with spectral norm only
        self.init_kwargs = copy.deepcopy(dict(
            D_ch=D_ch, D_wide=D_wide, resolution=resolution, D_attn=D_attn, n_classes=n_classes,
            num_D_SVs=num_D_SVs, num_D_SV_itrs=num_D_SV_itrs, D_activation=D_activation, SN_eps=SN_eps,
            output_dim=output_dim, D_init=D_init, D_param=D_param,
        ))  # fmt: skip
        if freeze_layers:
            self.init_kwargs["freeze_layers"] = int(freeze_layers)
        layout = discriminator_layout(D_ch, resolution)
        attention = parse_attention(D_attn)
        self.ch, self.D_wide, self.resolution, self.n_classes = D_ch, D_wide, resolution, n_classes
        self.activation = _activation(D_activation, "D_activation")
        make_conv = _conv_factory(True, num_D_SVs, num_D_SV_itrs, SN_eps)
        blocks = []
        for index, (cin, cout, pools, label) in enumerate(layout):
            stage = [DBlock(cin, cout, make_conv, D_wide, index > 0, self.activation, pools)]
            if label in attention:
                stage.append(Attention(cout, make_conv))
            blocks.append(nn.ModuleList(stage))
        self.blocks = nn.ModuleList(blocks)
        last = layout[-1][1]
        self.linear = SNLinear(last, output_dim, num_svs=num_D_SVs, num_itrs=num_D_SV_itrs, eps=SN_eps)
        self.embed = SNEmbedding(n_classes, last, num_svs=num_D_SVs, num_itrs=num_D_SV_itrs, eps=SN_eps)
        if not skip_init:
            _initialize(self, D_init)
        self.pooled = [pools for _, _, pools, _ in layout]
        layers = [layer for _, group in self.layers_from_image() for layer in group]
        if isinstance(freeze_layers, bool) or not 0 <= int(freeze_layers) <= len(layers):
            raise ValueError(f"freeze_layers must be from 0 to {len(layers)}, not {freeze_layers!r}")
        for layer in layers[: int(freeze_layers)]:
            freeze(layer)

    def layers_from_image(self) -> list[tuple[int, list[nn.Module]]]:
        """D's layers from the image inwards, one group per block with the resolution the block
        reads: ``conv1``, ``conv2``, ``conv_sc`` (where the block has one), then the block's
        attention as one layer (``theta``/``phi``/``g``/``o`` and ``gamma``). The ``linear``
        and ``embed`` head is not counted."""
        groups = []
        res = self.resolution
        for stage, pools in zip(self.blocks, self.pooled):
            block = stage[0]
            layers: list[nn.Module] = [block.conv1, block.conv2] + ([block.conv_sc] if block.learnable_sc else [])
            groups.append((res, layers + list(stage[1:])))
            res = res // 2 if pools else res
        return groups

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for stage in self.blocks:
            for layer in stage:
                h = layer(h)
        h = torch.sum(self.activation(h), [2, 3])  # global sum pooling
        out = self.linear(h)
        if y is None:
            return out
        return out + torch.sum(self.embed(y) * h, 1, keepdim=True)


def freeze(module: nn.Module) -> None:
    """Freezes ``module`` and everything in it: each parameter becomes a buffer of the same name
    (saved, never trained) and each spectrally normalized layer stops storing its power
    iteration (``u{k}``/``sv{k}`` stay as they are, in train mode too), so nothing of it moves."""
    for sub in module.modules():
        for name, tensor in list(sub._parameters.items()):
            if tensor is not None:
                del sub._parameters[name]
                sub.register_buffer(name, tensor.detach())
        if isinstance(sub, _SpectralNorm):
            sub.sn_frozen = True


# ----------------------------------------------------------------------------------------------
# Standing statistics


@torch.no_grad()
def standing_statistics(G: Generator, num_accumulations: int = 16, batch_size: int = 64, seed: int = 0) -> Generator:
    """A copy of ``G`` whose batch-norm statistics are "standing" ones (BigGAN paper, sec. 3.1 /
    appendix; the release's ``sample.py --accumulate_stats``): ``num_accumulations`` train-mode
    forwards of ``batch_size`` latents ``z ~ N(0, I)`` with uniformly drawn classes, each layer's
    batch mean and (biased) variance averaged over them; the copy is returned in eval mode.

    As in the release, the whole copy runs in train mode while the statistics accumulate, so its
    spectral-norm vectors ``u``/``sv`` take ``num_accumulations`` more power-iteration steps. The
    draws come from a CPU generator seeded with ``seed``: the same arguments give the same copy.
    ``G`` itself is not changed.
    """
    if num_accumulations < 1 or batch_size < 1:
        raise ValueError("standing_statistics: num_accumulations and batch_size must be >= 1")
    net = copy.deepcopy(G)
    norms = [m for m in net.modules() if isinstance(m, (ccbn, bn)) and getattr(m, "stored_mean", None) is not None
             and getattr(m, "norm_style", "bn") == "bn"]  # fmt: skip
    for module in norms:
        module._standing = _Standing()
    device = next(net.parameters()).device
    generator = torch.Generator().manual_seed(int(seed))
    net.train()
    try:
        for _ in range(num_accumulations):
            z = torch.randn([batch_size, net.dim_z], generator=generator).to(device)
            y = torch.randint(0, net.n_classes, [batch_size], generator=generator).to(device)
            net(z, net.shared(y))
    finally:
        net.eval()
    for module in norms:
        standing, module._standing = module._standing, None
        module.stored_mean.copy_(standing.mean / standing.count)
        module.stored_var.copy_(standing.var / standing.count)
    return net


def output_resolution(generator_kwargs: dict) -> int:
    """The side of the images a generator built from these kwargs makes."""
    blocks = len(generator_layout(1, int(generator_kwargs.get("resolution", 128))))
    return int(generator_kwargs.get("bottom_width", 4)) << blocks


def latent_size(generator_kwargs: dict) -> int:
    """``G.dim_z`` of a generator built from these kwargs (hierarchical: rounded down to a
    multiple of the number of chunks)."""
    dim_z = int(generator_kwargs.get("dim_z", 128))
    if not generator_kwargs.get("hier", False):
        return dim_z
    slots = len(generator_layout(1, int(generator_kwargs.get("resolution", 128)))) + 1
    return dim_z // slots * slots
