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
from typing import TYPE_CHECKING, Any

from ganzoo.synth._spec import (  # noqa: F401  (the package's names)
    COLORS, DEFAULT_SHAPES, GENERATOR_VERSION, KINDS, OPTION_KINDS, SHAPES, SPEC_PREFIX, check_kind, check_options,
    parse_spec,
)  # fmt: skip

if TYPE_CHECKING:  # pragma: no cover
    from ganzoo.synth._render import render
    from ganzoo.synth._stream import training_stream
    from ganzoo.synth._write import write

__all__ = ["COLORS", "GENERATOR_VERSION", "KINDS", "SHAPES", "check_options", "parse_spec", "render",
           "training_stream", "write"]  # fmt: skip

# numpy and PIL load on first use (PEP 562), so `ganzoo synth --help` and the CLI start fast.
_LAZY = {"render": "ganzoo.synth._render", "training_stream": "ganzoo.synth._stream", "write": "ganzoo.synth._write"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganzoo.synth' has no attribute {name!r}")
