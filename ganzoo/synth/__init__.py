"""Synthetic, privacy-free pretraining data: PinkNoise, Primitives, Primitives-S, Primitives-PS.

Baek & Shim, "Commonality in Natural Images Rescues GANs: Pretraining GANs with Generic and
Privacy-free Synthetic Data" (CVPR 2022), pretrain GANs on images made from three generic
properties of natural images: a 1/f^alpha magnitude spectrum, composition from elementary
shapes, and a salient object. A GAN pretrained on Primitives-PS transfers to many low-shot
targets better than one pretrained on a single natural-image data set.

Usage::

    images = ganzoo.synth.render("primitives-ps", range(16), 256, seed=0)  # uint8 [16, 256, 256, 3]
    ganzoo.synth.write("primitives-ps", 10000, 256, "pps.zip", workers=2)
    ganzoo.finetune("ffhq-stylegan2-256", "synth:primitives-ps", "runs/pps", recipe="scratch", kimg=5000)

What the paper and the authors' generator (github.com/FriedRonaldo/Primitives-PS,
``pretrain/noise_dataset.py``) do, and what ganzoo does (its own vectorized code):

* **PinkNoise.** The authors filter the spectrum of white Gaussian noise with
  ``1 / (|f_y|^a + |f_x|^b)`` on frequencies ``np.fft.fftfreq(R, d=0.2)``, with ``a, b`` uniform
  in ``[0.5, 3.5]`` drawn per channel (so fields are anisotropic: streaks when ``a != b``), the
  three channels independent, then map the image to 0..255 by its min and max over all
  channels. ganzoo keeps the filter, the frequency scale, the exponent range, the independent
  channels and the joint min-max, with two deliberate differences: the magnitude is exactly the
  filter and only the phase is random (the paper's "random phase, 1/f^alpha magnitude"; white
  noise also scatters the magnitude), and the mean (DC) is zero, where the authors' floor at the
  zero frequency adds a large random per-channel offset that mostly tints the whole image after
  the min-max. With ``a == b`` the radially averaged power falls as ``f^(-2a)`` (tested).
* **Primitives.** A background of one random colour (the authors' code fills all three channels
  with its first random value, a grey; ganzoo uses the random colour) and N = 100 shapes drawn in
  order with uniform random colours: line (odds 1/7, random end points, width = size), circle
  (2/7, radius = size), ellipse (2/7, two radii, rotation uniform in [0, 180) degrees), axis-aligned
  rectangle (2/7, two sides, top-left corner kept inside the image). Sizes follow the "Decay"
  policy: the n-th shape's sizes are uniform integers in ``[1, round(R/5 * (N-n)/N) + 2)``, so the
  first shapes are big and stay visible under the later, smaller ones. Deliberate differences:
  sizes and positions scale with R (the authors' line end points assume R = 256) and lines keep
  any direction (the authors sort the end points, so all their lines run top-left to
  bottom-right). Triangles and polygons are not among the paper's shapes and are not drawn by
  default; ``shapes`` adds them (see Options).
* **Primitives-S.** Primitives plus a salient object drawn last: a circle, an ellipse
  (axis-aligned) or a rectangle, 1/3 each, in a random solid colour, centred within R/10 of the
  image centre, radii in ``[R/4, 3R/8)``, rectangle sides in ``[3R/8, 3R/4)``. The authors place
  the rectangle's top-left corner in ``[R/8, R/2)``, off the centre; ganzoo centres it like the
  other shapes, so the object always covers the middle of the image.
* **Primitives-PS.** A pink-noise background, the 100 solid-colour primitives on it, and the
  salient object filled with a second, independent pink-noise texture (its own exponents and
  min-max). In the authors' released generator only the salient object is textured (filling each
  primitive with pink noise is present there but switched off); ganzoo does the same.

Options (beyond the paper; the defaults give the paper's images, byte for byte as before the
options existed). Pass them to :func:`render` and :func:`write` as keywords, to ``ganzoo synth`` as
``--color``/``--shapes``, or in a training spec after ``?``:
``synth:primitives-ps:1?color=correlated&shapes=line,circle,ellipse,rect,polygon``.

* ``color`` (pinknoise, primitives-ps): ``per-channel`` (default: three independent 1/f fields,
  as above) or ``correlated``: one 1/f field (one pair of exponents) shared by the channels,
  min-max mapped to ``t`` in 0..1 and coloured along a ramp between two uniform random colours
  ``c0, c1`` drawn per image: pixel ``= c0 + t * (c1 - c0)``. Every channel is then an affine
  function of the same field (channel correlation +-1, as luminance dominates natural images),
  while hue and contrast vary from image to image. In Primitives-PS both the background and the
  salient texture are coloured this way, each with its own field and colours.
* ``shapes`` (primitives, primitives-s, primitives-ps): which of ``line, circle, ellipse, rect,
  triangle, polygon`` the N shapes are drawn from (default the paper's four). Odds are
  proportional to 1 for lines and 2 for every other type (the authors' list has lines once and
  the others twice). ``triangle`` and ``polygon`` are random convex polygons with 3 and with 3 to 8
  vertices: vertex ``j`` of ``k`` sits at angle ``2*pi*(j + u_j)/k`` (``u_j`` uniform) on an
  ellipse with the shape's two Decay sizes as radii and a uniform random rotation, so the
  vertices are in order around a convex curve and the polygon is convex. The salient object is
  unaffected.

Options that differ from the defaults go into a training stream's definition (and so its hash);
the defaults add nothing, so existing runs keep their hashes. Image ``i`` depends only on
``(kind, options, seed, i)``; the kinds nest (see :mod:`ganzoo.synth._render`): Primitives-S image
``i`` is Primitives image ``i`` with its salient object on top.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Sequence

from ganzoo.errors import DatasetError

if TYPE_CHECKING:  # pragma: no cover
    from ganzoo.synth._render import render
    from ganzoo.synth._stream import training_stream
    from ganzoo.synth._write import write

__all__ = ["COLORS", "GENERATOR_VERSION", "KINDS", "SHAPES", "check_options", "parse_spec", "render",
           "training_stream", "write"]  # fmt: skip

KINDS = ("pinknoise", "primitives", "primitives-s", "primitives-ps")
COLORS = ("per-channel", "correlated")        # values of the color option, default first
SHAPES = ("line", "circle", "ellipse", "rect", "triangle", "polygon")
DEFAULT_SHAPES = SHAPES[:4]                     # the paper's shapes
# Which kinds take which option: colour applies where there is pink noise, shapes where there are primitives.
OPTION_KINDS = {"color": ("pinknoise", "primitives-ps"), "shapes": ("primitives", "primitives-s", "primitives-ps")}
# Bump whenever any kind's pixels change for the same (kind, seed, i): it is hashed into the
# definition of training streams, so a run never resumes on other images than it started with.
GENERATOR_VERSION = "ganzoo.synth/1"
SPEC_PREFIX = "synth:"
# numpy and PIL load on first use (PEP 562), so `ganzoo synth --help` and the CLI start fast.
_LAZY = {"render": "ganzoo.synth._render", "training_stream": "ganzoo.synth._stream", "write": "ganzoo.synth._write"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganzoo.synth' has no attribute {name!r}")


def check_kind(kind: str) -> None:
    """Raises :class:`DatasetError` naming the kinds when ``kind`` is not one of them."""
    if kind not in KINDS:
        raise DatasetError(f"unknown synthetic data kind {kind!r}; use one of {', '.join(KINDS)}")


def check_options(kind: str, color: str | None = None, shapes: str | Sequence[str] | None = None) -> dict[str, Any]:
    """Validates a kind's options (None: not given) and returns them in canonical form.

    Args:
        kind: one of :data:`KINDS`.
        color: ``"per-channel"`` or ``"correlated"`` (pinknoise, primitives-ps only).
        shapes: shape types, a sequence or one comma-separated string, from :data:`SHAPES`
            (primitives, primitives-s, primitives-ps only); order and repeats do not matter.

    Returns:
        Only the options that differ from the defaults: ``{"color": str, "shapes": [str, …]}``
        (shapes in :data:`SHAPES` order), ``{}`` for the paper's images. Equal images give equal
        dicts, which is what training streams hash.

    Raises:
        DatasetError: an unknown kind, an option the kind does not have, or a bad value.
    """
    check_kind(kind)
    given = {name: value for name, value in (("color", color), ("shapes", shapes)) if value is not None}
    for name in given:
        if kind not in OPTION_KINDS[name]:
            having = ", ".join(OPTION_KINDS[name])
            raise DatasetError(f"synthetic {kind} has no option {name!r} (only {having} have it)")
    options: dict[str, Any] = {}
    if color is not None:
        if color not in COLORS:
            raise DatasetError(f"synthetic data: color {color!r}; use one of {', '.join(COLORS)}")
        if color != COLORS[0]:
            options["color"] = color
    if shapes is not None:
        names = [name.strip() for name in (shapes.split(",") if isinstance(shapes, str) else shapes)]
        unknown = [name for name in names if name not in SHAPES]
        if unknown or not names:
            raise DatasetError(f"synthetic data: shapes {','.join(names)!r}; use one or more of {', '.join(SHAPES)}")
        canonical = [name for name in SHAPES if name in names]
        if tuple(canonical) != DEFAULT_SHAPES:
            options["shapes"] = canonical
    return options


def parse_spec(spec: str) -> tuple[str, int, dict[str, Any]]:
    """Splits ``"synth:KIND[:SEED][?NAME=VALUE[&NAME=VALUE]]"`` into ``(kind, seed, options)``.

    The seed is 0 by default; ``options`` is :func:`check_options`'s canonical dict, e.g.
    ``parse_spec("synth:pinknoise:2?color=correlated") == ("pinknoise", 2, {"color": "correlated"})``.

    Raises:
        DatasetError: not of that form, an unknown kind, a seed that is not an integer >= 0, or
            an unknown, repeated or bad option.
    """
    body, has_options, query = spec.partition("?")
    parts = body.split(":")
    usage = f"use synth:KIND[:SEED][?color=…&shapes=…] with KIND one of {', '.join(KINDS)}"
    if parts[0] + ":" != SPEC_PREFIX or len(parts) not in (2, 3):
        raise DatasetError(f"{spec!r}: not a synthetic data spec; {usage}")
    if parts[1] not in KINDS:
        raise DatasetError(f"{spec!r}: unknown synthetic data kind {parts[1]!r}; {usage}")
    if len(parts) == 3 and not parts[2].isdecimal():
        raise DatasetError(f"{spec!r}: the seed must be an integer >= 0; {usage}")
    kind, seed = parts[1], int(parts[2]) if len(parts) == 3 else 0
    given: dict[str, str] = {}
    for item in query.split("&") if has_options else ():
        name, has_value, value = item.partition("=")
        if name not in OPTION_KINDS or not has_value or name in given:
            problem = "repeated" if name in given else "not NAME=VALUE with NAME color or shapes"
            raise DatasetError(f"{spec!r}: option {item!r} is {problem}; {usage}")
        given[name] = value
    try:
        return kind, seed, check_options(kind, **given)
    except DatasetError as exc:
        raise DatasetError(f"{spec!r}: {exc}") from None
