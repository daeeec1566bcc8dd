"""ganzoo's BigGAN generator and discriminator, interoperable with the BigGAN-PyTorch release.

The networks of Brock, Donahue & Simonyan, "Large Scale GAN Training for High Fidelity Natural
Image Synthesis" (ICLR 2019), as ajbrock/BigGAN-PyTorch (MIT) builds them in its ``BigGAN.py``
and ``layers.py``. Written for ganzoo; what is kept identical is the interface: constructor
arguments and their defaults (the release's ``config`` dict builds them: keys that do not shape a
network, such as learning rates, are accepted and ignored), module and tensor names (``linear``,
``blocks.{i}.{j}.conv1``, ``bn1.gain``, ``output_layer.2``, ``shared.weight``, ``embed``), the
spectral norm's ``weight`` with its ``u0``/``sv0`` buffers, the conditional batch norm's
``stored_mean``/``stored_var``, attention's ``theta``/``phi``/``g``/``o``/``gamma``, the forward
signatures ``G(z, G.shared(y))`` and ``D(x, y)``, and the numerics, in eval and in train mode:

* Spectral norm (:class:`SNConv2d`, :class:`SNLinear`, :class:`SNEmbedding`): every forward runs
  ``num_itrs`` power-iteration steps from the stored left singular vectors ``u{k}`` (with
  Gram-Schmidt between the ``num_svs`` vectors) and divides the weight by the first singular value
  so estimated. In train mode the new ``u{k}`` and the singular values ``sv{k}`` are stored; in
  eval mode nothing is stored (the same step runs from the same ``u``).
* Class-conditional batch norm (:class:`ccbn`): per-class gains ``1 + gain(y)`` and biases
  ``bias(y)`` from linear layers (``G_shared``: fed the shared embedding, hierarchical latent
  chunk appended; otherwise embeddings indexed by class); train mode normalizes with the batch's
  statistics and updates ``stored_mean``/``stored_var`` (momentum 0.1, unbiased variance),
  eval mode uses the stored ones.

The same values are computed in fewer operations than the release computes them (float32
rounding aside: ~1e-6 on images and logits): a 3x3 convolution after 2x nearest upsampling runs at
the input's resolution as four folded 2x2 kernels; a 3x3 convolution before 2x2 average pooling
as one 4x4 convolution with stride 2; the 1x1 shortcuts run at the lower resolution (before
upsampling, after pooling); layers whose output is smaller than their weight divide the output,
not the weight, by the singular value; the power iteration's ``right Wᵀ`` serves both the new
left vector and the singular value; eval-mode conditional BN is one multiply-add.
(``scripts/bench_biggan.py`` times them against the release.)

The optimizers the release builds inside its networks are not built here: training is ganzoo's
loop's job. ``init_kwargs`` records what a network was built with (JSON-able).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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
NORM_STYLES = ("bn", "in", "nonorm")
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


def _check_choice(name: str, value: Any, allowed: Iterable[str]) -> None:
    if value not in tuple(allowed):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")


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
# Spectral norm


def _state(buffer: torch.Tensor) -> torch.Tensor:
    """``buffer`` for an in-place update during a forward (spectral-norm vectors, BN statistics):
    the same memory, with a version counter of its own. A network loaded from a checkpoint may
    hold all its tensors as views of one storage, which share one autograd version counter;
    writing a buffer through the view itself would then mark the parameters this forward saved
    for backward (attention's ``gamma``, ...) as modified and the backward would refuse to run."""
    return buffer.data


def _remove_components(x: torch.Tensor, basis: list[torch.Tensor]) -> torch.Tensor:
    """``x`` minus its projections onto each row vector of ``basis`` (Gram-Schmidt)."""
    for b in basis:
        x = x - torch.mm(b, x.t()) * b / torch.mm(b, b.t())
    return x


def _power_step(matrix: torch.Tensor, vectors: list[torch.Tensor], store: bool, eps: float) -> list[torch.Tensor]:
    """One power-iteration step per stored left singular vector; returns the singular values
    (differentiable in ``matrix``). ``store``: write the new vectors into ``vectors``."""
    lefts: list[torch.Tensor] = []
    rights: list[torch.Tensor] = []
    sigmas = []
    for stored in vectors:
        with torch.no_grad():
            right = F.normalize(_remove_components(torch.matmul(stored, matrix), rights), eps=eps)
            rights.append(right)
        # ``right Wᵀ`` once, with gradient: the new left vector (no gradient) and the singular
        # value ``right Wᵀ leftᵀ`` (gradient ``leftᵀ right``) both come from it.
        projected = torch.matmul(right, matrix.t())
        with torch.no_grad():
            left = F.normalize(_remove_components(projected.detach(), lefts), eps=eps)
            lefts.append(left)
            if store:
                _state(stored).copy_(left)
        sigmas.append(torch.squeeze(torch.matmul(projected, left.t())))
    return sigmas


class _SpectralNorm:
    """Mixin of the spectrally normalized layers: buffers ``u{k}`` (``[1, outputs]``) and
    ``sv{k}`` (``[1]``) for ``num_svs`` singular values; :meth:`normalized_weight`."""

    weight: torch.Tensor
    training: bool

    def _setup_sn(self, num_svs: int, num_itrs: int, outputs: int, eps: float) -> None:
        if num_svs < 1 or num_itrs < 1:
            raise ValueError(f"spectral norm needs num_svs >= 1 and num_itrs >= 1 (got {num_svs}, {num_itrs})")
        self.num_svs, self.num_itrs, self.eps = int(num_svs), int(num_itrs), float(eps)
        for k in range(self.num_svs):
            self.register_buffer(f"u{k}", torch.randn(1, outputs))  # type: ignore[attr-defined]
            self.register_buffer(f"sv{k}", torch.ones(1))  # type: ignore[attr-defined]

    @property
    def u(self) -> list[torch.Tensor]:
        return [getattr(self, f"u{k}") for k in range(self.num_svs)]

    @property
    def sv(self) -> list[torch.Tensor]:
        return [getattr(self, f"sv{k}") for k in range(self.num_svs)]

    def singular_value(self) -> torch.Tensor:
        """The weight's top singular value, estimated by this forward's power iteration (which
        stores its vectors and values in train mode only); differentiable in the weight."""
        matrix = self.weight.view(self.weight.size(0), -1)
        store = self.training and not getattr(self, "sn_frozen", False)  # a frozen layer (FreezeD) stores nothing
        for _ in range(self.num_itrs):
            sigmas = _power_step(matrix, self.u, store, self.eps)
        if store:
            with torch.no_grad():
                for stored, sigma in zip(self.sv, sigmas):
                    _state(stored).copy_(sigma)
        return sigmas[0]

    def normalized_weight(self) -> torch.Tensor:
        """The weight divided by its top singular value (:meth:`singular_value`)."""
        return self.weight / self.singular_value()


def _scaled_output(out: torch.Tensor, sigma: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``out / sigma + bias`` (bias along dim 1): a layer applied with its raw weight and divided
    by the singular value afterwards, for layers whose output is smaller than their weight (the
    low-resolution convolutions, the class embedding), where dividing the weight would cost a
    pass over all of it in the forward and two in the backward. The same values up to float
    rounding."""
    out = out / sigma
    if bias is None:
        return out
    return out + bias.view([1, -1] + [1] * (out.ndim - 2))


def _applied_weight(conv: nn.Conv2d) -> torch.Tensor:
    """The kernel ``conv`` applies in this forward: spectrally normalized (with the power
    iteration's bookkeeping) for :class:`SNConv2d`, the plain weight otherwise."""
    return conv.normalized_weight() if isinstance(conv, _SpectralNorm) else conv.weight


# Sizes from which the fused forms below are used (CPU-tuned; smaller maps gain nothing there).
UPSAMPLE_CONV_FUSED_FROM = 16  # input side of the 3x3 convolution after 2x nearest upsampling
CONV_POOL_FUSED_FROM = 32  # input side of the 3x3 convolution before 2x2 average pooling


def _plain_conv3x3(conv: nn.Conv2d) -> bool:
    """Whether ``conv`` is a 3x3 convolution with stride 1, padding 1, no dilation or groups."""
    return (conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros")  # fmt: skip


def _upsampled_conv3x3(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(F.interpolate(x, scale_factor=2))`` for a 3x3 convolution with padding 1, computed
    at the input's resolution: each of the four output phases ``(a, b)`` (output pixel
    ``(2i + a, 2j + b)``) sees only 2x2 input pixels, so the 3x3 kernel folds into four 2x2
    kernels (rows/columns ``(w0, w1 + w2)`` for phase 0, ``(w0 + w1, w2)`` for phase 1), run as
    one convolution with padding 1 and interleaved into the output: 16/36 of the multiply-adds
    (times ``((H + 1) / H)²``) and no upsampled copy of ``x``. The same values up to float
    rounding (the summed kernel taps)."""
    if x.shape[-1] < UPSAMPLE_CONV_FUSED_FROM or x.shape[-2] < UPSAMPLE_CONV_FUSED_FROM or not _plain_conv3x3(conv):
        return conv(F.interpolate(x, scale_factor=2))
    w = _applied_weight(conv)
    n, _, height, width = x.shape
    out_ch = w.shape[0]
    rows = (torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2),  # phase a = 0: input rows i-1, i
            torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2))  # phase a = 1: rows i, i+1  # fmt: skip
    kernels = []
    for k in rows:  # [O, C, 2, 3] -> columns, the same way
        kernels.append(torch.stack([k[..., 0], k[..., 1] + k[..., 2]], -1))
        kernels.append(torch.stack([k[..., 0] + k[..., 1], k[..., 2]], -1))
    bias = None if conv.bias is None else conv.bias.repeat(4)
    phases = F.conv2d(x, torch.cat(kernels), bias, padding=1).view(n, 2, 2, out_ch, height + 1, width + 1)
    out = x.new_empty([n, out_ch, height, 2, width, 2])
    for a in (0, 1):
        for b in (0, 1):
            out[:, :, :, a, :, b] = phases[:, a, b, :, a : a + height, b : b + width]
    return out.view(n, out_ch, 2 * height, 2 * width)


def _conv3x3_pooled(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``F.avg_pool2d(conv(x), 2)`` for a 3x3 convolution with padding 1, as one 4x4 convolution
    with stride 2 (the kernel averaged over its four 2x2-pool positions): 16/36 of the
    multiply-adds, no full-resolution output. The same values up to float rounding."""
    small = x.shape[-1] < CONV_POOL_FUSED_FROM or x.shape[-2] < CONV_POOL_FUSED_FROM
    if small or x.shape[-1] % 2 or x.shape[-2] % 2 or not _plain_conv3x3(conv):
        return F.avg_pool2d(conv(x), 2)
    w = _applied_weight(conv)
    kernel = (F.pad(w, (0, 1, 0, 1)) + F.pad(w, (1, 0, 0, 1)) + F.pad(w, (0, 1, 1, 0)) + F.pad(w, (1, 0, 1, 0))) * 0.25
    return F.conv2d(x, kernel, conv.bias, stride=2, padding=1)


class SNConv2d(nn.Conv2d, _SpectralNorm):
    """A 2-D convolution with spectral norm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, groups: int = 1, bias: bool = True, num_svs: int = 1, num_itrs: int = 1,
                 eps: float = 1e-12):  # fmt: skip
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self._setup_sn(num_svs, num_itrs, out_channels, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode == "zeros" and isinstance(self.padding, tuple) and x.ndim == 4:
            sides = [(size + 2 * p - d * (k - 1) - 1) // s + 1 for size, p, d, k, s in
                     zip(x.shape[2:], self.padding, self.dilation, self.kernel_size, self.stride)]  # fmt: skip
            if x.shape[0] * self.out_channels * sides[0] * sides[1] < self.weight.numel():
                out = F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.groups)
                return _scaled_output(out, self.singular_value(), self.bias)
        return F.conv2d(x, self.normalized_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)


class SNLinear(nn.Linear, _SpectralNorm):
    """A linear layer with spectral norm."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, num_svs: int = 1, num_itrs: int = 1,
                 eps: float = 1e-12):  # fmt: skip
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._setup_sn(num_svs, num_itrs, out_features, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() // max(x.shape[-1], 1) * self.out_features < self.weight.numel():
            out = F.linear(x, self.weight) / self.singular_value()  # see _scaled_output
            return out if self.bias is None else out + self.bias
        return F.linear(x, self.normalized_weight(), self.bias)


class SNEmbedding(nn.Embedding, _SpectralNorm):
    """An embedding with spectral norm of its ``[num_embeddings, dim]`` table (the vectors
    ``u{k}`` have ``num_embeddings`` entries). Takes class indices, or one-hot/soft rows
    ``[N, num_embeddings]`` (a weighted sum of the rows; one-hot gives the indexed row)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, num_svs: int = 1, num_itrs: int = 1,
                 eps: float = 1e-12):  # fmt: skip
        nn.Embedding.__init__(self, num_embeddings, embedding_dim)
        self._setup_sn(num_svs, num_itrs, num_embeddings, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1] if x.is_floating_point() else x.numel()
        if rows < self.num_embeddings:  # fewer rows looked up than the table has: see _scaled_output
            table, sigma = self.weight, self.singular_value()
        else:
            table, sigma = self.normalized_weight(), None
        out = x.to(table.dtype) @ table if x.is_floating_point() else F.embedding(x, table)
        return out if sigma is None else out / sigma


def _conv_factory(spectral: bool, num_svs: int, num_itrs: int, eps: float):
    """``make(in, out, kernel_size=3, padding=1, bias=True)``: the family's convolutions."""

    def make(cin: int, cout: int, kernel_size: int = 3, padding: int = 1, bias: bool = True) -> nn.Conv2d:
        if spectral:
            return SNConv2d(cin, cout, kernel_size, padding=padding, bias=bias, num_svs=num_svs, num_itrs=num_itrs, eps=eps)
        return nn.Conv2d(cin, cout, kernel_size, padding=padding, bias=bias)

    return make


def _linear_factory(spectral: bool, num_svs: int, num_itrs: int, eps: float):
    def make(cin: int, cout: int, bias: bool = True) -> nn.Linear:
        if spectral:
            return SNLinear(cin, cout, bias=bias, num_svs=num_svs, num_itrs=num_itrs, eps=eps)
        return nn.Linear(cin, cout, bias=bias)

    return make


# ----------------------------------------------------------------------------------------------
# Layers


class Attention(nn.Module):
    """SAGAN's non-local block as the release computes it: queries ``theta`` at full
    resolution, keys ``phi`` and values ``g`` max-pooled 2x2, output ``o`` scaled by ``gamma``
    (0 at init) and added to the input."""

    def __init__(self, ch: int, make_conv) -> None:
        super().__init__()
        self.ch = ch
        self.theta = make_conv(ch, ch // 8, kernel_size=1, padding=0, bias=False)
        self.phi = make_conv(ch, ch // 8, kernel_size=1, padding=0, bias=False)
        self.g = make_conv(ch, ch // 2, kernel_size=1, padding=0, bias=False)
        self.o = make_conv(ch // 2, ch, kernel_size=1, padding=0, bias=False)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor, y: Any = None) -> torch.Tensor:
        height, width = x.shape[2], x.shape[3]
        pixels = height * width
        queries = self.theta(x).view(-1, self.ch // 8, pixels)
        keys = F.max_pool2d(self.phi(x), [2, 2]).view(-1, self.ch // 8, pixels // 4)
        values = F.max_pool2d(self.g(x), [2, 2]).view(-1, self.ch // 2, pixels // 4)
        weights = F.softmax(torch.bmm(queries.transpose(1, 2), keys), -1)
        attended = torch.bmm(values, weights.transpose(1, 2)).view(-1, self.ch // 2, height, width)
        return self.gamma * self.o(attended) + x


class _Standing:
    """Sums of per-batch statistics while standing statistics are accumulated."""

    def __init__(self) -> None:
        self.mean: torch.Tensor | None = None
        self.var: torch.Tensor | None = None
        self.count = 0

    def add(self, x: torch.Tensor) -> None:
        var, mean = torch.var_mean(x.float(), dim=[0, 2, 3], unbiased=False)
        self.mean = mean if self.mean is None else self.mean + mean
        self.var = var if self.var is None else self.var + var
        self.count += 1


def _normalize(module: nn.Module, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
               momentum: float) -> torch.Tensor:  # fmt: skip
    """Batch norm with the module's ``stored_mean``/``stored_var`` (updated in train mode), or,
    while standing statistics accumulate, with the batch's statistics and nothing updated."""
    standing = getattr(module, "_standing", None)
    if standing is not None and module.training:
        standing.add(x)
        return F.batch_norm(x, None, None, weight, bias, True, 0.0, module.eps)
    return F.batch_norm(x, _state(module.stored_mean), _state(module.stored_var), weight, bias, module.training, momentum,
                        module.eps)  # fmt: skip


class ccbn(nn.Module):  # the release's module name
    """Class-conditional batch norm: ``norm(x) * (1 + gain(y)) + bias(y)``.

    Args:
        output_size: channels of ``x``.
        input_size: features of ``y`` (``G_shared``: shared embedding + latent chunk) or the
            number of classes (embeddings indexed by class).
        make_linear: builds ``gain`` and ``bias`` (``(in, out) -> module``).
        norm_style: ``'bn'`` (batch statistics / stored ones), ``'in'`` (instance norm; in eval
            mode the stored statistics), ``'nonorm'``.
    """

    def __init__(self, output_size: int, input_size: int, make_linear, eps: float = 1e-5, momentum: float = 0.1,
                 norm_style: str = "bn") -> None:  # fmt: skip
        super().__init__()
        _check_choice("norm_style", norm_style, NORM_STYLES)
        self.output_size, self.input_size = output_size, input_size
        self.gain = make_linear(input_size, output_size)
        self.bias = make_linear(input_size, output_size)
        self.eps, self.momentum, self.norm_style = eps, momentum, norm_style
        self._standing: _Standing | None = None
        if norm_style in ("bn", "in"):
            self.register_buffer("stored_mean", torch.zeros(output_size))
            self.register_buffer("stored_var", torch.ones(output_size))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        scale = (1 + self.gain(y)).view(y.size(0), -1, 1, 1)
        shift = self.bias(y).view(y.size(0), -1, 1, 1)
        if self.norm_style == "bn" and not self.training:
            # Eval: the stored statistics fold into the per-sample scale and shift, one pass.
            inv_std = torch.rsqrt(self.stored_var + self.eps).view(1, -1, 1, 1)
            scale = scale * inv_std
            return torch.addcmul(shift - self.stored_mean.view(1, -1, 1, 1) * scale, x, scale)
        if self.norm_style == "bn":
            # The release's conditional BN always updates its statistics with momentum 0.1.
            normed = _normalize(self, x, None, None, 0.1)
        elif self.norm_style == "in":
            normed = F.instance_norm(x, _state(self.stored_mean), _state(self.stored_var), None, None, self.training, 0.1,
                                     self.eps)  # fmt: skip
        else:
            normed = x
        return torch.addcmul(shift, normed, scale)  # normed * scale + shift, in one pass

    def extra_repr(self) -> str:
        return f"out: {self.output_size}, in: {self.input_size}, norm_style={self.norm_style}"


class bn(nn.Module):  # the release's module name
    """Unconditional batch norm with parameters ``gain``/``bias`` and buffers
    ``stored_mean``/``stored_var`` (G's output layer)."""

    def __init__(self, output_size: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.output_size, self.eps, self.momentum = output_size, eps, momentum
        self.gain = nn.Parameter(torch.ones(output_size))
        self.bias = nn.Parameter(torch.zeros(output_size))
        self._standing: _Standing | None = None
        self.register_buffer("stored_mean", torch.zeros(output_size))
        self.register_buffer("stored_var", torch.ones(output_size))

    def forward(self, x: torch.Tensor, y: Any = None) -> torch.Tensor:
        return _normalize(self, x, self.gain, self.bias, self.momentum)


class GBlock(nn.Module):
    """Generator residual block: BN-ReLU, 2x nearest upsampling, conv, BN-ReLU, conv; the
    shortcut is upsampled and projected by a 1x1 convolution ``conv_sc``."""

    def __init__(self, in_channels: int, out_channels: int, make_conv, make_bn, activation: nn.Module) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv1 = make_conv(in_channels, out_channels)
        self.conv2 = make_conv(out_channels, out_channels)
        self.conv_sc = make_conv(in_channels, out_channels, kernel_size=1, padding=0)
        self.bn1 = make_bn(in_channels)
        self.bn2 = make_bn(out_channels)
        self.activation = activation

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = _upsampled_conv3x3(self.activation(self.bn1(x, y)), self.conv1)
        h = self.conv2(self.activation(self.bn2(h, y)))
        # A 1x1 convolution commutes with nearest upsampling: project, then upsample (1/4 the work).
        return h + F.interpolate(self.conv_sc(x), scale_factor=2)


class DBlock(nn.Module):
    """Discriminator residual block: (ReLU,) conv, ReLU, conv, (2x2 average pooling); the
    shortcut is a 1x1 convolution ``conv_sc`` where channels change or the block pools (after
    the pooling in the first block, before it in the others)."""

    def __init__(self, in_channels: int, out_channels: int, make_conv, wide: bool, preactivation: bool,
                 activation: nn.Module, downsample: bool) -> None:  # fmt: skip
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.hidden_channels = out_channels if wide else in_channels
        self.preactivation, self.downsample = preactivation, downsample
        self.conv1 = make_conv(in_channels, self.hidden_channels)
        self.conv2 = make_conv(self.hidden_channels, out_channels)
        self.learnable_sc = in_channels != out_channels or downsample
        if self.learnable_sc:
            self.conv_sc = make_conv(in_channels, out_channels, kernel_size=1, padding=0)
        self.activation = activation

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        # The release pools after ``conv_sc`` in the preactivation blocks and before it in the
        # first; both are linear, so they commute: pooling first always (1/4 the work).
        x = F.avg_pool2d(x, 2) if self.downsample else x
        return self.conv_sc(x) if self.learnable_sc else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self.activation(self.conv1(h))
        h = _conv3x3_pooled(h, self.conv2) if self.downsample else self.conv2(h)
        return h + self._shortcut(x)


def _initialize(net: nn.Module, style: str) -> None:
    """The release's initialization of every convolution, linear layer and embedding weight."""
    for module in net.modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear, nn.Embedding)) or module.weight.is_meta:
            continue
        with torch.no_grad():
            if style == "ortho":
                nn.init.orthogonal_(module.weight)
            elif style == "N02":
                nn.init.normal_(module.weight, 0, 0.02)
            else:
                nn.init.xavier_uniform_(module.weight)


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
