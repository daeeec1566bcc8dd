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
  bottom-right). Triangles and polygons are not among the paper's shapes and are not drawn.
* **Primitives-S.** Primitives plus a salient object drawn last: a circle, an ellipse
  (axis-aligned) or a rectangle, 1/3 each, in a random solid colour, centred within R/10 of the
  image centre, radii in ``[R/4, 3R/8)``, rectangle sides in ``[3R/8, 3R/4)``. The authors place
  the rectangle's top-left corner in ``[R/8, R/2)``, off the centre; ganzoo centres it like the
  other shapes, so the object always covers the middle of the image.
* **Primitives-PS.** A pink-noise background, the 100 solid-colour primitives on it, and the
  salient object filled with a second, independent pink-noise texture (its own exponents and
  min-max). In the authors' released generator only the salient object is textured (filling each
  primitive with pink noise is present there but switched off); ganzoo does the same.

Image ``i`` depends only on ``(kind, seed, i)``; the kinds nest (see :mod:`ganzoo.synth._render`):
Primitives-S image ``i`` is Primitives image ``i`` with its salient object on top.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ganzoo.errors import DatasetError

if TYPE_CHECKING:  # pragma: no cover
    from ganzoo.synth._render import render
    from ganzoo.synth._write import write
    from ganzoo.train.dataset import ProceduralImages

__all__ = ["GENERATOR_VERSION", "KINDS", "parse_spec", "render", "training_stream", "write"]

KINDS = ("pinknoise", "primitives", "primitives-s", "primitives-ps")
# Bump whenever any kind's pixels change for the same (kind, seed, i): it is hashed into the
# definition of training streams, so a run never resumes on other images than it started with.
GENERATOR_VERSION = "ganzoo.synth/1"
SPEC_PREFIX = "synth:"
# numpy and PIL load on first use (PEP 562), so `ganzoo synth --help` and the CLI start fast.
_LAZY = {"render": "ganzoo.synth._render", "write": "ganzoo.synth._write"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganzoo.synth' has no attribute {name!r}")


def parse_spec(spec: str) -> tuple[str, int]:
    """Splits ``"synth:KIND"`` or ``"synth:KIND:SEED"`` into ``(kind, seed)`` (seed 0 by default).

    Raises:
        DatasetError: not of that form, an unknown kind, or a seed that is not an integer >= 0.
    """
    parts = spec.split(":")
    usage = f"use synth:KIND or synth:KIND:SEED with KIND one of {', '.join(KINDS)}"
    if parts[0] + ":" != SPEC_PREFIX or len(parts) not in (2, 3):
        raise DatasetError(f"{spec!r}: not a synthetic data spec; {usage}")
    if parts[1] not in KINDS:
        raise DatasetError(f"{spec!r}: unknown synthetic data kind {parts[1]!r}; {usage}")
    if len(parts) == 3 and not parts[2].isdecimal():
        raise DatasetError(f"{spec!r}: the seed must be an integer >= 0; {usage}")
    return parts[1], int(parts[2]) if len(parts) == 3 else 0


def training_stream(spec: str, resolution: int, channels: int) -> "ProceduralImages":
    """An endless training stream of synthetic images: draw ``n`` is image ``n`` of the kind.

    Args:
        spec: ``"synth:KIND"`` or ``"synth:KIND:SEED"``, e.g. ``"synth:primitives-ps:1"``.
        resolution: the model resolution.
        channels: 3 (RGB) or 1 (grayscale: PIL's ITU-R 601 luma, as :mod:`ganzoo.data` reads
            images written by :func:`write`).

    Returns:
        A :class:`ganzoo.train.dataset.ProceduralImages` whose hash covers the kind, the seed,
        the channels and :data:`GENERATOR_VERSION`.

    Raises:
        DatasetError: a bad spec or kind, a too small resolution, or channels other than 1 or 3.
    """
    import numpy as np
    import torch
    from PIL import Image

    from ganzoo.synth._render import check_resolution, render
    from ganzoo.train.dataset import ProceduralImages

    kind, seed = parse_spec(spec)
    check_resolution(resolution)
    if channels not in (1, 3):
        raise DatasetError(f"{spec}: synthetic images have 1 or 3 channels, not {channels}")

    def render_stream(indices: np.ndarray) -> tuple[torch.Tensor, None]:
        images = render(kind, indices, resolution, seed)  # [N, R, R, 3]
        if channels == 1:
            images = np.stack([np.asarray(Image.fromarray(image).convert("L")) for image in images])[..., None]
        return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), None

    definition = {"kind": kind, "seed": seed, "channels": channels, "generator": GENERATOR_VERSION}
    return ProceduralImages(render_stream, resolution, channels, spec, definition)
