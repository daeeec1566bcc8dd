"""Tensor operations behind ganzoo's StyleGAN2 networks, in plain PyTorch (no custom kernels).

What is here, all on NCHW tensors:

* :func:`bias_act` — bias, pointwise nonlinearity, output gain and symmetric clamping, the
  epilogue of every layer;
* FIR resampling — :func:`setup_filter`, :func:`upfirdn2d`, :func:`upsample2d`,
  :func:`downsample2d`: zero-stuffing, a separable low-pass kernel applied as a true 2-D
  convolution, and decimation;
* :func:`conv2d_resample` — a convolution fused with 2× up- or down-sampling;
* :func:`winograd_conv3x3` — a 3×3 convolution by Winograd's F(4×4, 3×3), which
  :func:`conv2d_resample` uses for wide layers only inside ``torch.compile`` on CPU;
* :func:`modulated_conv2d` — the style-modulated, demodulated convolution of StyleGAN2
  (Karras et al. 2020, section 2.2, equations 1-3);
* :func:`normalize_2nd_moment` and :func:`minibatch_std`.

Resampling kernels are kept as normalized 2-D tensors ``[taps_y, taps_x]`` (the outer product
of the 1-D taps), which is also how checkpoints store them in ``resample_filter`` buffers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# Nonlinearities


@dataclass(frozen=True)
class _Nonlinearity:
    """A pointwise function and the gain that restores unit output variance for unit input."""

    apply: Callable[[torch.Tensor], torch.Tensor]
    gain: float


_LEAK = 0.2  # negative slope of the leaky ReLU used throughout StyleGAN
_NONLINEARITIES: dict[str, _Nonlinearity] = {
    "linear": _Nonlinearity(lambda t: t, 1.0),
    "relu": _Nonlinearity(F.relu, math.sqrt(2)),
    "lrelu": _Nonlinearity(lambda t: F.leaky_relu(t, _LEAK), math.sqrt(2)),
    "tanh": _Nonlinearity(torch.tanh, 1.0),
    "sigmoid": _Nonlinearity(torch.sigmoid, 1.0),
    "elu": _Nonlinearity(F.elu, 1.0),
    "selu": _Nonlinearity(F.selu, 1.0),
    "softplus": _Nonlinearity(F.softplus, 1.0),
    "swish": _Nonlinearity(F.silu, math.sqrt(2)),
}


def _nonlinearity(name: str) -> _Nonlinearity:
    try:
        return _NONLINEARITIES[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(_NONLINEARITIES)}") from None


def activation_gain(activation: str) -> float:
    """The output scale a layer applies after ``activation`` by default."""
    return _nonlinearity(activation).gain


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
             gain: float | None = None, clamp: float | None = None) -> torch.Tensor:  # fmt: skip
    """``clamp(act(x + b) * gain)``, the bias/activation/gain/clamp epilogue of a layer.

    ``b`` (one value per entry of axis ``dim``) may be None; ``gain`` None means the
    activation's own gain; ``clamp`` None or negative means no clamping. Shape and dtype of
    ``x`` are kept.
    """
    nonlin = _nonlinearity(act)
    scale = nonlin.gain if gain is None else float(gain)
    limit = None if clamp is None or clamp < 0 else clamp
    along_dim = [1] * x.ndim
    along_dim[dim] = -1
    shifted = x if b is None else x + b.reshape(along_dim)
    if shifted is not x and not (torch.is_grad_enabled() and shifted.requires_grad):
        # Inference on a tensor of our own: the same operations, in place (no new buffers).
        if act == "lrelu":
            F.leaky_relu_(shifted, _LEAK)
        elif act != "linear":
            shifted = nonlin.apply(shifted)
        if scale != 1:
            shifted.mul_(scale)
        return shifted if limit is None else shifted.clamp_(-limit, limit)
    if act in _SLOPES and torch.compiler.is_compiling() and scale > 0:
        return _PiecewiseLinearAct.apply(shifted, _SLOPES[act], scale, limit)
    y = nonlin.apply(shifted)
    if scale != 1:
        y = y * scale
    return y if limit is None else y.clamp(-limit, limit)


_SLOPES = {"linear": 1.0, "lrelu": _LEAK}  # activations whose slope the output tells


class _PiecewiseLinearAct(torch.autograd.Function):
    """``clamp(leaky(x) * scale)`` whose backward reads nothing but the output ``y``.

    For a piecewise-linear activation with a positive scale, the sign of ``y`` is the sign of
    ``x`` and ``|y| < limit`` says the clamp did not act, so the output alone gives the
    derivative. It runs only under ``torch.compile`` (see :mod:`ganzoo.compile`), for this
    reason: AOT autograd's partitioner precomputes every gradient-independent part of a backward
    formula in the forward graph and saves the smallest tensors it can, here boolean masks
    (``x > 0``, the clamp's range), and inductor's CPU code stores booleans about ten times
    slower than floats (torch 2.14: 88 ms vs 6 ms for 16.7M values on 2 cores). So the
    comparisons below also read the incoming gradient (times zero), which keeps them in the
    backward graph, where they fuse into the gradient's kernel and nothing but ``y`` is saved.
    The gradient equals autograd's except where ``x`` is exactly 0 or ``y`` exactly ``±limit``
    (ties that autograd settles by its own convention).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float, scale: float, limit: float | None) -> torch.Tensor:
        y = x if slope == 1 else torch.where(x > 0, x, x * slope)
        y = y * scale if scale != 1 else y
        y = y if limit is None else y.clamp(-limit, limit)
        ctx.save_for_backward(y)
        ctx.slope, ctx.scale, ctx.limit = slope, scale, limit
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (y,) = ctx.saved_tensors
        slope, scale, limit = ctx.slope, ctx.scale, ctx.limit
        tied = y + grad * 0  # y, made to depend on the gradient (see the class docstring)
        dx = grad * scale if slope == 1 else torch.where(tied > 0, grad * scale, grad * (scale * slope))
        if limit is not None:
            dx = torch.where(tied.abs() < limit, dx, 0.0)
        return dx, None, None, None


# ----------------------------------------------------------------------------------------------
# FIR resampling


def setup_filter(taps: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """The 2-D low-pass kernel for 1-D ``taps``, scaled to unit DC gain (its entries sum to 1).

    A 1-D input is made separable by an outer product (``[1, 3, 3, 1]`` gives a 4×4 kernel of
    sum 64 before scaling); a 2-D input is only normalized.
    """
    kernel = torch.as_tensor(taps, dtype=torch.float32)
    if kernel.ndim < 2:
        line = kernel.reshape(-1)
        kernel = torch.outer(line, line)
    return kernel / kernel.sum()


def _edges(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """Padding as (left, right, top, bottom) from an int, ``[x, y]`` or four values."""
    values = [padding] * 4 if isinstance(padding, int) else [int(v) for v in padding]
    if len(values) == 2:
        return values[0], values[0], values[1], values[1]
    left, right, top, bottom = values
    return left, right, top, bottom


def _taps(kernel: torch.Tensor | None) -> tuple[int, int]:
    """(taps along x, taps along y) of a 2-D kernel; a missing kernel is a single tap."""
    return (1, 1) if kernel is None else (int(kernel.shape[-1]), int(kernel.shape[0]))


def _interleave_zeros(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Puts ``factor - 1`` zeros after every pixel along both spatial axes."""
    n, c, h, w = x.shape
    spread = x.new_zeros([n, c, h, factor, w, factor])
    spread[:, :, :, 0, :, 0] = x
    return spread.view(n, c, h * factor, w * factor)


def _fir(x: torch.Tensor, kernel: torch.Tensor, border: int, stride: int) -> torch.Tensor:
    """Depthwise true convolution of every channel with ``kernel``, zero ``border``, ``stride``."""
    channels = x.shape[1]
    flipped = kernel.to(x.dtype).flip([0, 1])  # F.conv2d correlates; flip for a convolution
    bank = flipped.view(1, 1, *kernel.shape).expand(channels, 1, *kernel.shape)
    return F.conv2d(x, bank, stride=stride, padding=border, groups=channels)


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
              padding: int | Sequence[int] = 0, gain: float = 1.0) -> torch.Tensor:  # fmt: skip
    """Upsample (zero-stuffing), pad, FIR-filter, downsample (decimation), per channel.

    Args:
        x: ``[N, C, H, W]``.
        f: 2-D kernel ``[taps_y, taps_x]`` (applied as a convolution, i.e. flipped), or None for
            a single unit tap.
        up: stuffing factor: ``up - 1`` zeros follow every input pixel.
        down: keep every ``down``-th filtered pixel, starting with the first.
        padding: zeros added around the stuffed image, an int, ``[x, y]`` or
            ``[left, right, top, bottom]``; negative values crop instead.
        gain: multiplies the kernel (``up ** 2`` keeps the brightness of stuffed images).
    """
    kernel = torch.ones([1, 1], dtype=torch.float32, device=x.device) if f is None else f
    if up > 1:
        x = _interleave_zeros(x, up)
    left, right, top, bottom = _edges(padding)
    border = 0
    if left == right == top == bottom and left >= 0:
        border = left  # uniform: let the convolution pad, no padded copy
    elif (left, right, top, bottom) != (0, 0, 0, 0):
        x = F.pad(x, [left, right, top, bottom])  # negative entries crop
    return _fir(x, kernel * gain, border, down)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, gain: float = 1.0) -> torch.Tensor:
    """``up``-times larger image, interpolated by the low-pass kernel ``f``."""
    tx, ty = _taps(f)
    # The stuffed image gets taps-1 zeros in all along each axis, split so that output pixel 0
    # is centred where input pixel 0 was.
    lead_x, lead_y = (tx + up - 1) // 2, (ty + up - 1) // 2
    pads = [lead_x, tx - 1 - lead_x, lead_y, ty - 1 - lead_y]
    return upfirdn2d(x, f, up=up, padding=pads, gain=gain * up**2)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2, gain: float = 1.0) -> torch.Tensor:
    """``down``-times smaller image, low-passed by ``f`` before decimation."""
    tx, ty = _taps(f)
    spare_x, spare_y = tx - down, ty - down  # zeros needed so the output is exactly H/down
    pads = [(spare_x + 1) // 2, spare_x // 2, (spare_y + 1) // 2, spare_y // 2]
    return upfirdn2d(x, f, down=down, padding=pads, gain=gain)


# ----------------------------------------------------------------------------------------------
# Winograd's minimal filtering for 3x3 convolutions (compiled CPU path)

# Winograd F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
# 2016): a 6x6 input tile gives a 4x4 output tile with 36 multiplications per channel pair
# instead of 144. The 1-D algorithm multiplies polynomials by evaluating them at six points,
# here 0, 1, -1, 2, -1/2 and infinity (where a polynomial's value is its leading coefficient);
# a correlation is the transpose of that product. With V_d the (point x power) evaluation
# matrix of polynomials of degree d, the 1-D correlation of data tile ``d`` (6 values) with
# kernel ``g`` (3) is ``A^T [(G g) * (B^T d)]`` with ``A = V_3``, ``G = V_2`` and
# ``B^T = V_5^{-T}``. The matrices are built here from the points in exact rational
# arithmetic; the row scale 1 / prod_{l != j}(p_j - p_l) of ``V_5^{-T}`` is moved into ``G`` so
# that the data transform has entries of at most 2.5 in magnitude, all multiples of 1/2.
# The points set the rounding: in float32 at 512 channels x 32², 0, ±1, ±2 err by up to 4.8e-5,
# these by 1.7e-5 (a direct convolution: 1.6e-6 in eager mode, 1.4e-5 compiled).
_WINOGRAD_POINTS = (0, 1, -1, 2, Fraction(-1, 2))  # the finite points; infinity is the sixth
_WINOGRAD_TILE = 4  # output pixels per tile side


def _poly_mul(a: list, b: list) -> list:
    """Coefficients (lowest power first) of the product of two polynomials."""
    out = [Fraction(0)] * (len(a) + len(b) - 1)
    for i, ai in enumerate(a):
        for j, bj in enumerate(b):
            out[i + j] += ai * bj
    return out


def _winograd_matrices() -> tuple[tuple[tuple[float, ...], ...], ...]:
    """``(A^T, G, B^T)`` of F(4, 3) as float rows: 4x6, 6x3 and 6x6."""
    points = [Fraction(p) for p in _WINOGRAD_POINTS]
    taps, size = 3, len(points) + 1

    def evaluation(degree: int) -> list[list[Fraction]]:  # rows: points, then infinity
        rows = [[p**k for k in range(degree + 1)] for p in points]
        return rows + [[Fraction(int(k == degree)) for k in range(degree + 1)]]

    a = evaluation(_WINOGRAD_TILE - 1)
    g = evaluation(taps - 1)
    b_t = []  # row j: the coefficients of prod_{l != j} (x - p_l); infinity: the full product
    for j in range(size):
        poly = [Fraction(1)]
        for l, p in enumerate(points):
            if l != j:
                poly = _poly_mul(poly, [-p, Fraction(1)])
        b_t.append(poly + [Fraction(0)] * (size - len(poly)))
        if j < len(points):
            scale = math.prod(points[j] - p for l, p in enumerate(points) if l != j)
            g[j] = [v / scale for v in g[j]]
    a_t = [[a[j][i] for j in range(size)] for i in range(_WINOGRAD_TILE)]
    return tuple(tuple(tuple(float(v) for v in row) for row in m) for m in (a_t, g, b_t))


_WINOGRAD_A_T, _WINOGRAD_G, _WINOGRAD_B_T = _winograd_matrices()  # module constants: what dynamo reads


def _mix(parts: Sequence[torch.Tensor], matrix: Sequence[Sequence[float]]) -> list[torch.Tensor]:
    """``[sum_j matrix[i][j] * parts[j] for each row i]`` without the zero terms: a small
    constant matrix applied across a list of same-shaped tensors (pointwise, fuses under
    inductor)."""
    rows = []
    for coefficients in matrix:
        total = None
        for c, part in zip(coefficients, parts):
            if c == 0:
                continue
            term = part if c == 1 else -part if c == -1 else part * c
            total = term if total is None else total + term
        rows.append(total)
    return rows


def winograd_conv3x3(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.conv2d(x, weight, padding=1)`` for 3x3 kernels by Winograd's F(4x4, 3x3).

    A quarter of the multiplications of a direct convolution, spent as 36 matrix products
    ``[N * tiles, C_in] @ [C_in, C_out]``, around data and output transforms that only add
    and scale. Written for inductor on CPU (see :func:`conv2d_resample`), where it beats the
    direct convolution once channels are wide and images not tiny. In float32, for
    unit-variance data and a kernel of unit output gain, it is within about 2e-5 of the exact
    result, oneDNN's direct convolution within about 1e-6 eager and 1e-5 compiled (the
    difference is the transforms' rounding).

    Args:
        x: ``[N, C_in, H, W]`` with H and W multiples of 4.
        weight: ``[C_out, C_in, 3, 3]``.

    Returns:
        ``[N, C_out, H, W]``, channels-last in memory.
    """
    n, c_in, height, width = x.shape
    c_out = weight.shape[0]
    step = _WINOGRAD_TILE
    if tuple(weight.shape[2:]) != (3, 3) or height % step or width % step:
        raise ValueError(f"winograd_conv3x3 needs a 3x3 kernel and sides divisible by {step}, "
                         f"got {list(weight.shape)} on {list(x.shape)}")  # fmt: skip
    a_t, g, b_t = _WINOGRAD_A_T, _WINOGRAD_G, _WINOGRAD_B_T
    span = len(b_t)  # 6: input tile side
    rows_n, cols_n = height // step, width // step
    padded = F.pad(x, [1, 1, 1, 1])
    # Data transform B^T d B: first along y (tile rows), then along x.
    along_y = _mix([padded[:, :, i : i + step * rows_n : step, :] for i in range(span)], b_t)
    tiles = [t for row in along_y for t in _mix([row[..., j : j + step * cols_n : step] for j in range(span)], b_t)]
    data = torch.stack(tiles).permute(0, 1, 3, 4, 2).reshape(span * span, n * rows_n * cols_n, c_in)
    # Kernel transform G w G^T, as [36, C_in, C_out].
    g_matrix = weight.new_tensor(g)
    kernel = torch.einsum("ai,oxij,bj->abxo", g_matrix, weight, g_matrix).reshape(span * span, c_in, c_out)
    products = torch.bmm(data, kernel).view(span, span, n, rows_n, cols_n, c_out)
    # Output transform A^T m A, back to pixels: [N, rows, 4, cols, 4, C_out].
    out_rows = [torch.stack(_mix(list(r), a_t), dim=3) for r in _mix(list(products), a_t)]
    pixels = torch.stack(out_rows, dim=2).reshape(n, height, width, c_out)
    return pixels.permute(0, 3, 1, 2)


def _winograd_pays(x: torch.Tensor, w: torch.Tensor, padding: int, groups: int) -> bool:
    """Whether :func:`conv2d_resample` hands a stride-1 convolution to :func:`winograd_conv3x3`.

    Only inside ``torch.compile`` on CPU in float32 (inductor fuses the transforms; eager
    mode and cuDNN have their own algorithms), for 3x3 kernels with ``padding=1``, no groups,
    at least 256 channels in and out and sides of at least 32 that are multiples of 4. Below
    that the memory-bound transforms cost more than the saved multiplications. Measured with
    ``scripts/bench_winograd.py`` (2 cores, batch 4), forward / forward + backward time against
    the compiled direct convolution: 0.61 / 0.55 at 512 channels x 32², 0.74 / 0.65 at 256 x 32²,
    0.71 / 0.60 at 256 x 64², 0.69 / 0.56 at 256 x 128²; but 1.20 / 0.98 at 512 x 16², 1.10 / 0.82
    at 128 x 128² and 1.89 / 1.50 at 64 x 256².
    """
    return (
        torch.compiler.is_compiling()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and groups == 1
        and padding == 1
        and tuple(w.shape[2:]) == (3, 3)
        and min(int(w.shape[0]), int(w.shape[1])) >= 256
        and min(int(x.shape[2]), int(x.shape[3])) >= 32
        and x.shape[2] % _WINOGRAD_TILE == 0
        and x.shape[3] % _WINOGRAD_TILE == 0
    )


# ----------------------------------------------------------------------------------------------
# Convolution with resampling


def _transposed_kernel(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """``[O, I/g, kh, kw]`` -> the ``[I, O/g, kh, kw]`` layout ``conv_transpose2d`` expects."""
    per_group = weight.unflatten(0, (groups, weight.shape[0] // groups))  # [g, O/g, I/g, kh, kw]
    return per_group.transpose(1, 2).flatten(0, 1)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1, down: int = 1,
                    padding: int = 0, groups: int = 1) -> torch.Tensor:  # fmt: skip
    """A convolution with ``w`` combined with 2× FIR up- or down-sampling by ``f``.

    Semantics, with ``S`` the zero-stuffing of :func:`upfirdn2d`, ``L`` the low-pass filter and
    ``D`` decimation:

    * ``up > 1``: ``L(S(x) * w)`` — the kernel is applied as a true convolution on the stuffed
      grid (one strided transposed convolution), then low-passed;
    * ``down > 1``: ``D(L(x) ⋆ w)`` — low-pass first, then a strided correlation;
    * otherwise a plain ``F.conv2d`` with ``padding``.

    1×1 kernels commute with the filter, so they run at the lower of the two resolutions.
    These are the conventions trained StyleGAN2 checkpoints rely on.

    Args:
        x: ``[N, C_in, H, W]``.
        w: ``[C_out, C_in / groups, kh, kw]``.
        f: 2-D low-pass kernel, needed when resampling.
        up, down: resampling factors (at most one of them above 1 in the networks).
        padding: zeros around the input of the convolution, per side.
        groups: convolution groups.
    """
    kh, kw = int(w.shape[2]), int(w.shape[3])
    tx, ty = _taps(f)
    pointwise = kh == 1 and kw == 1

    if up > 1:
        # Low-pass padding that centres an upsampled image, plus the convolution's own padding.
        lead_x, lead_y = padding + (tx + up - 1) // 2, padding + (ty + up - 1) // 2
        trail_x, trail_y = padding + (tx - up) // 2, padding + (ty - up) // 2
        if pointwise and down == 1:
            y = F.conv2d(x, w, groups=groups)
            return upfirdn2d(y, f, up=up, padding=[lead_x, trail_x, lead_y, trail_y], gain=up * up)
        # The transposed convolution already produced the full support of S(x) * w: kw-1
        # extra pixels in front and kw-up behind (it stops before the trailing stuffed zeros).
        y = F.conv_transpose2d(x, _transposed_kernel(w, groups), stride=up, groups=groups)
        pads = [lead_x - (kw - 1), trail_x - (kw - up), lead_y - (kh - 1), trail_y - (kh - up)]
        y = upfirdn2d(y, f, padding=pads, gain=up * up)
        return y if down == 1 else upfirdn2d(y, f, down=down)

    if down > 1:
        lead_x, lead_y = padding + (tx - down + 1) // 2, padding + (ty - down + 1) // 2
        trail_x, trail_y = padding + (tx - down) // 2, padding + (ty - down) // 2
        pads = [lead_x, trail_x, lead_y, trail_y]
        if pointwise:
            return F.conv2d(upfirdn2d(x, f, down=down, padding=pads), w, groups=groups)
        return F.conv2d(upfirdn2d(x, f, padding=pads), w, stride=down, groups=groups)

    if _winograd_pays(x, w, padding, groups):
        return winograd_conv3x3(x, w)
    if padding >= 0:
        return F.conv2d(x, w, padding=padding, groups=groups)
    return F.conv2d(F.pad(x, [padding] * 4), w, groups=groups)


# ----------------------------------------------------------------------------------------------
# Modulated convolution (StyleGAN2, eq. 1-3)


def _demodulation(styles: torch.Tensor, weight: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``1 / sigma_j`` of eq. 3 for every sample: ``[N, C_out]``.

    ``sigma_j^2 = sum_{i,k} (s_i w_ijk)^2 = sum_i s_i^2 (sum_k w_ijk^2)``: a product of the
    squared styles with the per-(out, in) kernel energies, without forming modulated weights.
    """
    energy = weight.square().sum(dim=[2, 3])  # [O, I]
    return torch.rsqrt(styles.square() @ energy.t() + eps)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, noise: torch.Tensor | None = None,
                     up: int = 1, down: int = 1, padding: int = 0, resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True, fused_modconv: bool = True) -> torch.Tensor:  # fmt: skip
    """Style-modulated convolution (Karras et al. 2020, eq. 1-3), plus optional noise.

    Every sample ``n`` convolves with its own kernel ``w'_ijk = s_ni * w_ijk`` (eq. 1), divided,
    with ``demodulate``, by ``sigma_nj`` (eq. 2-3) so that output maps have unit expected
    variance. ``noise`` is added to the result.

    ``fused_modconv`` picks how: True builds the ``N`` kernels and runs one grouped convolution
    over the whole batch (fast for inference); False scales the input channels by ``s`` and the
    output channels by ``1 / sigma`` around one shared convolution (cheap to differentiate).

    For float16 inputs the kernel and styles are first divided by their largest magnitudes
    (and the kernel by ``sqrt(fan_in)``) so no intermediate overflows; demodulation removes
    these scales again (StyleGAN2-ADA, appendix on mixed precision).

    Args:
        x: ``[N, C_in, H, W]``.
        weight: ``[C_out, C_in, kh, kw]``.
        styles: ``[N, C_in]``.
        noise: broadcastable to the output, or None.
        up, down, padding, resample_filter: as for :func:`conv2d_resample`.
        demodulate: divide by ``sigma`` (eq. 3).
        fused_modconv: grouped-convolution path.

    Returns:
        ``[N, C_out, H', W']`` in the dtype of ``x``.
    """
    n = x.shape[0]
    c_out, c_in, kh, kw = weight.shape
    resample = {"f": resample_filter, "up": up, "down": down, "padding": padding}

    if demodulate and x.dtype == torch.float16:
        peak_w = weight.abs().amax(dim=[1, 2, 3], keepdim=True)
        weight = weight * (1 / math.sqrt(c_in * kh * kw) / peak_w)
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
    inv_sigma = _demodulation(styles, weight) if demodulate else None

    if fused_modconv:
        per_input = styles.view(n, 1, c_in)
        if inv_sigma is not None:
            per_input = per_input * inv_sigma.view(n, c_out, 1)  # [N, O, I]
        kernels = weight.unsqueeze(0) * per_input.view(*per_input.shape, 1, 1)  # [N, O, I, kh, kw]
        stacked = x.reshape(1, n * c_in, *x.shape[2:])
        y = conv2d_resample(stacked, kernels.reshape(-1, c_in, kh, kw).to(x.dtype), groups=n, **resample)
        y = y.reshape(n, c_out, *y.shape[2:])
        return y if noise is None else y.add_(noise)

    y = conv2d_resample(x * styles.to(x.dtype).view(n, c_in, 1, 1), weight.to(x.dtype), **resample)
    if inv_sigma is not None:
        out_scale = inv_sigma.to(x.dtype).view(n, c_out, 1, 1)
        return y * out_scale if noise is None else torch.addcmul(noise.to(x.dtype), y, out_scale)
    return y if noise is None else y.add_(noise.to(x.dtype))


# ----------------------------------------------------------------------------------------------
# Normalization and batch statistics


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """``x / sqrt(mean(x^2) + eps)`` along ``dim`` (the pixel norm of the mapping network)."""
    mean_square = x.square().mean(dim=dim, keepdim=True)
    return x * torch.rsqrt(mean_square + eps)


def minibatch_std(x: torch.Tensor, group_size: int | None, num_channels: int = 1) -> torch.Tensor:
    """``x`` with ``num_channels`` more feature maps: the spread of features within groups.

    The batch is cut into groups of ``G = min(group_size, N)`` samples, sample ``i`` going to
    group ``i mod (N / G)``. Within a group, each feature's standard deviation over the ``G``
    samples is taken; the channels are split into ``num_channels`` equal parts, and each part's
    average (over its channels and all pixels) becomes one constant map, shared by the group.
    """
    n, c, h, w = x.shape
    members = n if group_size is None else min(group_size, n)
    if n % members:
        raise ValueError(f"minibatch-std: batch size {n} is not divisible by group size {members}")
    split = x.reshape(members, n // members, num_channels, c // num_channels, h, w)
    deviation = split - split.mean(dim=0)
    spread = torch.sqrt(deviation.square().mean(dim=0) + 1e-8)  # [N/G, F, C/F, H, W]
    per_group = spread.mean(dim=[2, 3, 4]).reshape(-1, num_channels, 1, 1)
    maps = per_group.repeat(members, 1, h, w)  # sample i reads group i mod N/G
    return torch.cat([x, maps], dim=1)
