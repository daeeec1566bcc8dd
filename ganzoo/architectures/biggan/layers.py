"""The layers of ganzoo's BigGAN networks (:mod:`ganzoo.architectures.biggan.networks`).

As ajbrock/BigGAN-PyTorch (MIT) builds them in its ``layers.py`` and ``BigGAN.py``, with the
release's module and tensor names, and its numerics in eval and in train mode:

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
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

NORM_STYLES = ("bn", "in", "nonorm")


def _check_choice(name: str, value: Any, allowed: Iterable[str]) -> None:
    if value not in tuple(allowed):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")


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
