"""The four generators of Baek & Shim (CVPR 2022): PinkNoise, Primitives, Primitives-S, Primitives-PS.

numpy and PIL only (no torch), so worker processes start fast. Image ``i`` of a kind is a pure
function of ``(kind, seed, i)``: every image owns its random streams, seeded by
``[seed, i, stream]``. The streams are shared between kinds on purpose, so the kinds nest:

* stream 0, the layout (background colour and the N shapes): Primitives image ``i`` is the
  Primitives-S image ``i`` without its salient object, and Primitives-PS image ``i`` has the same
  shapes on another background;
* stream 1, the salient object (shape, place, size, colour);
* stream 2, the pink-noise background: PinkNoise image ``i`` is the background of Primitives-PS
  image ``i``;
* stream 3, the pink-noise texture inside the salient object of Primitives-PS.

The options (``color``, ``shapes``; see :mod:`ganzoo.synth`) only add draws after the default
ones or replace the pink-noise draws, so the default images are exactly those made before the
options existed.

Speed (what was measured to matter, 256x256, one core): a pink-noise field is one inverse real
FFT of a half spectrum whose phases are looked up from 16 random bits per frequency (a table of
the unit circle), 0.3 ms instead of 1.8 ms for Gaussian draws; the frequency axes are computed
once per resolution. One FFT per image is faster than one batched FFT over 32 images (1.3 vs
1.8 ms per image: the batch leaves the cache), so images are made one by one. Shapes are drawn
with ``PIL.ImageDraw`` (C code, no per-pixel Python) and the salient texture is pasted through
a mask image.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ganzoo.errors import DatasetError
from ganzoo.resources import machine_memory
from ganzoo.synth._spec import COLORS, SHAPES, check_options

NUM_SHAPES = 100                 # N, shapes per image (the paper's default)
EXPONENT_RANGE = (0.5, 3.5)      # 1/f exponents, drawn per channel and axis (authors' generator)
MIN_RESOLUTION = 8
# Peak working memory of rendering one image, per pixel: measured 45 bytes at 2048x2048 for
# pinknoise and primitives-ps (float64 channels, the FFT's complex spectrum, PIL's canvas),
# rounded up.
_PEAK_BYTES_PER_PIXEL = 64
# The authors' generator builds the filter on np.fft.fftfreq(R, d=0.2), i.e. frequencies 5k/R;
# the scale matters because two exponents are mixed in one denominator (see _pink_spectrum).
_FREQUENCY_SCALE = 5.0
# Shape types (codes in ganzoo.synth.SHAPES order) and their weights, as in the authors' list
# [line, circle, circle, ellipse, ellipse, rectangle, rectangle]; triangles and polygons (not in
# the paper) weigh like the others. The salient object is never a line.
_LINE, _CIRCLE, _ELLIPSE, _RECTANGLE, _TRIANGLE, _POLYGON = range(6)
_SHAPE_WEIGHTS = np.array([1, 2, 2, 2, 2, 2])
_POLYGON_VERTICES = (3, 8)       # a polygon's vertex count is uniform in 3..8 (a triangle's is 3)
_ELLIPSE_VERTICES = 40           # rotated ellipses are drawn as polygons (PIL has no rotation)
_PHASE_STEPS = 65536             # phase resolution: 2*pi/65536
_LAYOUT, _SALIENT, _BACKGROUND, _TEXTURE = range(4)


def check_resolution(resolution: int, workers: int = 1) -> None:
    """Raises :class:`DatasetError` for a resolution the shape sizes cannot be scaled to, or whose
    rendering (``workers`` images at once) would need more memory than this machine has: the
    refusal comes before any work, never as an allocation error halfway."""
    if resolution < MIN_RESOLUTION:
        raise DatasetError(f"synthetic images need a resolution of at least {MIN_RESOLUTION}, not {resolution}")
    total = machine_memory()
    need = _PEAK_BYTES_PER_PIXEL * resolution * resolution * max(1, workers)
    if total is not None and need > total:
        raise DatasetError(f"synthetic images of {resolution}x{resolution}: rendering {max(1, workers)} at a time needs "
                           f"about {need / 2**30:.0f} GiB of memory, this machine has {total / 2**30:.0f} GiB")  # fmt: skip


def _rng(seed: int, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, stream])


@functools.lru_cache(maxsize=8)
def _frequency_axes(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """|frequency| along rows ``[R, 1]`` and along the half-spectrum columns ``[1, R//2+1]``."""
    rows = np.abs(np.fft.fftfreq(resolution)) * _FREQUENCY_SCALE
    cols = np.fft.rfftfreq(resolution) * _FREQUENCY_SCALE
    return rows.astype(np.float32)[:, None], cols.astype(np.float32)[None, :]


@functools.lru_cache(maxsize=1)
def _unit_circle() -> np.ndarray:
    """``exp(2*pi*i*k/65536)`` for k < 65536: random phases are looked up from 16 random bits."""
    return np.exp(2j * np.pi * np.arange(_PHASE_STEPS) / _PHASE_STEPS).astype(np.complex64)


def _pink_spectrum(rng: np.random.Generator, resolution: int, exponents: np.ndarray) -> np.ndarray:
    """Random half-spectra ``[C, R, R//2+1]`` (complex64): magnitude ``1/(|fy|^a + |fx|^b)``, uniform phase.

    The mean (DC) is zero; ``exponents`` is ``[C, 2]``, one ``(a, b)`` per channel.
    """
    rows, cols = _frequency_axes(resolution)
    a = exponents[:, 0, None, None].astype(np.float32)
    b = exponents[:, 1, None, None].astype(np.float32)
    with np.errstate(divide="ignore"):
        magnitude = 1.0 / (rows[None] ** a + cols[None] ** b)  # [C, R, R//2+1]
    magnitude[:, 0, 0] = 0.0
    phases = rng.integers(0, _PHASE_STEPS, size=magnitude.shape, dtype=np.uint16)
    spectrum = np.take(_unit_circle(), phases)
    spectrum *= magnitude
    return spectrum


def pink_noise(rng: np.random.Generator, resolution: int, exponents: np.ndarray) -> np.ndarray:
    """One pink-noise field ``[C, R, R]`` (float32, zero mean, not normalized).

    Args:
        rng: the random stream.
        resolution: R.
        exponents: ``[C, 2]``: per channel, the exponent along rows and along columns. Equal
            exponents ``a`` give an isotropic-looking field whose radially averaged power falls
            as ``f^(-2a)``.

    Returns:
        The field; :func:`_to_uint8` maps it to pixels.
    """
    return np.fft.irfft2(_pink_spectrum(rng, resolution, np.asarray(exponents)), s=(resolution, resolution))


def _draw_exponents(rng: np.random.Generator, fields: int = 3) -> np.ndarray:
    """``[fields, 2]``: the exponents of each field (RGB channel) along rows and columns."""
    low, high = EXPONENT_RANGE
    return rng.uniform(low, high, size=(fields, 2))


def _pink_image(seed: int, index: int, stream: int, resolution: int, correlated: bool = False) -> Image.Image:
    """A pink-noise RGB image from stream ``stream`` of image ``index`` (its exponents and phases).

    ``correlated``: one field (one pair of exponents) coloured along a ramp between two random
    colours, instead of one independent field per channel.
    """
    rng = _rng(seed, index, stream)
    if correlated:
        field = pink_noise(rng, resolution, _draw_exponents(rng, 1))            # [1, R, R]
        ends = rng.integers(0, 256, size=(2, 3))                                # c0, c1: [2, RGB]
        ramp = ends[0] + np.arange(256)[:, None] / 255 * (ends[1] - ends[0])    # [256, RGB]
        luts = np.rint(ramp).astype(np.int64).T.tolist()                        # per channel, t -> value
        gray = Image.fromarray(_to_uint8(field)[0])
        return Image.merge("RGB", [gray.point(lut) for lut in luts])
    field = pink_noise(rng, resolution, _draw_exponents(rng))
    # Three "L" planes merged by PIL: 15x faster than handing PIL the transposed [R, R, 3] array.
    return Image.merge("RGB", [Image.fromarray(plane) for plane in _to_uint8(field)])


def _to_uint8(field: np.ndarray) -> np.ndarray:
    """Maps a field ``[C, R, R]`` to 0..255 by its min and max over all channels (rounded)."""
    low, high = field.min(), field.max()
    field -= low
    field *= 255.0 / max(high - low, 1e-12)
    field += 0.5
    return field.astype(np.uint8)


def _ellipse_polygons(centres: np.ndarray, radii: np.ndarray, degrees: np.ndarray,
                      t: np.ndarray | None = None) -> list[list[float]]:  # fmt: skip
    """Vertices ``[x0, y0, x1, y1, …]`` of rotated ellipses (``centres``, ``radii``: ``[M, 2]``), all at once.

    ``t``: the vertices' parametric angles, ``[K]`` or ``[M, K]`` (default K evenly spaced).
    """
    if t is None:
        t = np.linspace(0.0, 2.0 * np.pi, _ELLIPSE_VERTICES, endpoint=False)
    x, y = radii[:, :1] * np.cos(t), radii[:, 1:] * np.sin(t)                 # [M, K]
    cos, sin = np.cos(np.deg2rad(degrees))[:, None], np.sin(np.deg2rad(degrees))[:, None]
    xs, ys = centres[:, :1] + x * cos - y * sin, centres[:, 1:] + x * sin + y * cos
    return np.stack([xs, ys], axis=2).reshape(len(centres), 2 * xs.shape[1]).tolist()  # also for M = 0


def _convex_polygons(rng: np.random.Generator, kinds: np.ndarray, centres: np.ndarray, radii: np.ndarray,
                     degrees: np.ndarray) -> list[list[float]]:  # fmt: skip
    """Vertices of the random convex triangles and polygons among ``kinds`` (``[N]``), in order.

    Vertex ``j`` of ``k`` is at parametric angle ``2*pi*(j + u_j)/k`` on the shape's rotated
    ellipse: increasing angles on a convex curve, so the polygon is convex. Draws for all N
    shapes (fixed-size draws keep the stream simple) and keeps those of the polygonal ones.
    """
    n, most = len(kinds), _POLYGON_VERTICES[1]
    counts = np.where(kinds == _TRIANGLE, 3, rng.integers(_POLYGON_VERTICES[0], most + 1, size=n))  # [N]
    t = 2.0 * np.pi * (np.arange(most) + rng.random((n, most))) / counts[:, None]                  # [N, K]
    polygonal = (kinds == _TRIANGLE) | (kinds == _POLYGON)
    vertices = _ellipse_polygons(centres[polygonal], radii[polygonal], degrees[polygonal], t[polygonal])
    return [flat[: 2 * count] for flat, count in zip(vertices, counts[polygonal].tolist())]


def _draw_shapes(canvas: Image.Image, rng: np.random.Generator, resolution: int,
                 shapes: Sequence[int] = (_LINE, _CIRCLE, _ELLIPSE, _RECTANGLE)) -> None:  # fmt: skip
    """Draws the N shapes of the layout stream, biggest first ("Decay" sizes), onto ``canvas``.

    The n-th shape's size (line width, radius, side) is uniform in ``[1, m_n)`` with
    ``m_n = round(R/5 * (N - n)/N) + 2``, so early shapes are large and late ones small and the
    early ones stay visible. Positions are uniform over the image; colours uniform RGB. ``shapes``:
    the shape type codes to draw from (in increasing order), with odds from ``_SHAPE_WEIGHTS``.
    """
    n = NUM_SHAPES
    codes = np.asarray(shapes)
    kinds = codes[rng.choice(len(codes), size=n, p=_SHAPE_WEIGHTS[codes] / _SHAPE_WEIGHTS[codes].sum())]
    colours = rng.integers(0, 256, size=(n, 3))
    max_size = np.rint(resolution / 5 * (n - np.arange(n)) / n).astype(np.int64) + 2
    sizes = rng.integers(1, max_size[:, None], size=(n, 2))     # [N, 2]: two sizes per shape
    points = rng.integers(0, resolution, size=(n, 4))           # [N, 4]: x1, y1, x2, y2
    # Rectangles keep their top-left corner far enough from the edge for their largest side.
    corners = (rng.random((n, 2)) * np.maximum(resolution - max_size, 1)[:, None]).astype(np.int64)
    angles = rng.uniform(0.0, 180.0, size=n)
    ellipses = kinds == _ELLIPSE
    polygons = iter(_ellipse_polygons(points[ellipses, :2], sizes[ellipses], angles[ellipses]))
    # Only drawn from when asked for, after all the default draws: the default images do not change.
    convex = iter(_convex_polygons(rng, kinds, points[:, :2], sizes, angles)
                  if _TRIANGLE in shapes or _POLYGON in shapes else ())  # fmt: skip
    draw = ImageDraw.Draw(canvas)
    for shape, colour, (s1, s2), (x1, y1, x2, y2), (cx, cy) in zip(
        kinds.tolist(), map(tuple, colours.tolist()), sizes.tolist(), points.tolist(), corners.tolist()
    ):
        if shape == _LINE:
            draw.line([(x1, y1), (x2, y2)], fill=colour, width=s1)
        elif shape == _CIRCLE:
            draw.ellipse([x1 - s1, y1 - s1, x1 + s1, y1 + s1], fill=colour)
        elif shape == _ELLIPSE:
            draw.polygon(next(polygons), fill=colour)
        elif shape == _RECTANGLE:
            draw.rectangle([cx, cy, cx + s1, cy + s2], fill=colour)
        else:
            draw.polygon(next(convex), fill=colour)


def _draw_salient(draw: ImageDraw.ImageDraw, rng: np.random.Generator, resolution: int, fill: int | None) -> None:
    """Draws the salient object: one big circle, ellipse or rectangle (1/3 each) near the centre.

    ``fill`` None paints it in its own random colour; a number paints it in that value (a mask).

    Its centre is uniform within R/10 of the image centre; circle and ellipse radii are uniform
    in ``[R/4, 3R/8)``, rectangle sides in ``[3R/8, 3R/4)``. It therefore always covers the
    central ``0.15 R`` (circle, ellipse) or ``0.0875 R`` (rectangle) around the middle.
    """
    shape = int(rng.integers(3)) + _CIRCLE
    colour = tuple(rng.integers(0, 256, size=3).tolist())
    cx, cy = rng.uniform(resolution / 2 - resolution / 10, resolution / 2 + resolution / 10, size=2)
    r1, r2 = rng.uniform(resolution / 4, 3 * resolution / 8, size=2)
    if shape == _CIRCLE:
        r2 = r1
    elif shape == _RECTANGLE:
        r1, r2 = r1 * 3 / 4, r2 * 3 / 4    # half sides in [3R/16, 3R/8)
    box = [round(cx - r1), round(cy - r2), round(cx + r1), round(cy + r2)]
    if shape == _RECTANGLE:
        draw.rectangle(box, fill=colour if fill is None else fill)
    else:
        draw.ellipse(box, fill=colour if fill is None else fill)


def render(kind: str, indices: Sequence[int] | np.ndarray, resolution: int, seed: int = 0, *,
           color: str | None = None, shapes: str | Sequence[str] | None = None) -> np.ndarray:  # fmt: skip
    """Images ``indices`` of a synthetic data kind.

    Args:
        kind: one of :data:`ganzoo.synth.KINDS`.
        indices: image numbers (non-negative); image ``i`` is the same whatever else is asked.
        resolution: R, the image side in pixels (at least 8).
        seed: the data set's seed (non-negative).
        color: pinknoise and primitives-ps: ``"per-channel"`` (default, the paper's) or
            ``"correlated"`` (one field coloured along a random two-colour ramp).
        shapes: primitives kinds: the shape types drawn, from :data:`ganzoo.synth.SHAPES` (a
            sequence or ``"line,circle,…"``); default the paper's ``line, circle, ellipse, rect``.

    Returns:
        uint8 ``[len(indices), R, R, 3]``.

    Raises:
        DatasetError: an unknown kind or option, a too small resolution, a negative seed or index.
    """
    options = check_options(kind, color=color, shapes=shapes)
    correlated = options.get("color") == COLORS[1]
    shape_codes = tuple(SHAPES.index(name) for name in options.get("shapes", SHAPES[:4]))
    check_resolution(resolution)
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if seed < 0 or (indices.size and int(indices.min()) < 0):
        raise DatasetError(f"synthetic data: seed and image indices must be non-negative (seed {seed})")
    out = np.empty((indices.size, resolution, resolution, 3), dtype=np.uint8)
    for row, index in enumerate(indices.tolist()):
        out[row] = _render_one(kind, index, resolution, seed, correlated, shape_codes)
    return out


def _render_one(kind: str, index: int, resolution: int, seed: int, correlated: bool,
                shapes: tuple[int, ...]) -> np.ndarray:  # fmt: skip
    """uint8 ``[R, R, 3]``: image ``index`` of ``kind`` (options as pink-noise mode and shape codes)."""
    if kind == "pinknoise":
        return np.asarray(_pink_image(seed, index, _BACKGROUND, resolution, correlated))
    layout = _rng(seed, index, _LAYOUT)
    background = tuple(layout.integers(0, 256, size=3).tolist())
    if kind == "primitives-ps":
        canvas = _pink_image(seed, index, _BACKGROUND, resolution, correlated)
    else:
        canvas = Image.new("RGB", (resolution, resolution), background)
    _draw_shapes(canvas, layout, resolution, shapes)
    salient = _rng(seed, index, _SALIENT)
    if kind == "primitives-s":
        _draw_salient(ImageDraw.Draw(canvas), salient, resolution, fill=None)
    elif kind == "primitives-ps":
        mask = Image.new("L", (resolution, resolution), 0)
        _draw_salient(ImageDraw.Draw(mask), salient, resolution, fill=255)
        canvas.paste(_pink_image(seed, index, _TEXTURE, resolution, correlated), (0, 0), mask)
    return np.asarray(canvas)
