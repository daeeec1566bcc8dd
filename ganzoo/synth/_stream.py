"""``ganzoo.synth.training_stream``: synthetic images as an endless training stream.

Apart from the package's ``__init__`` (which resolves ``training_stream`` lazily, by name, like
``render`` and ``write``), so that the package imports none of its submodules and
:mod:`ganzoo.train.dataset` reaches the stream through ``ganzoo.synth`` without an import cycle.
"""

from __future__ import annotations

import numpy as np
import torch

from ganzoo.errors import DatasetError
from ganzoo.streams import ProceduralImages, rgb_batch
from ganzoo.synth._spec import GENERATOR_VERSION, parse_spec
from ganzoo.synth._render import check_resolution, render

__all__ = ["training_stream"]


def training_stream(spec: str, resolution: int, channels: int) -> ProceduralImages:
    """An endless training stream of synthetic images: draw ``n`` is image ``n`` of the kind.

    Args:
        spec: ``"synth:KIND[:SEED][?OPTIONS]"``, e.g. ``"synth:primitives-ps:1"`` or
            ``"synth:pinknoise?color=correlated"`` (see :func:`parse_spec`).
        resolution: the model resolution.
        channels: 3 (RGB) or 1 (grayscale: PIL's ITU-R 601 luma, as :mod:`ganzoo.data` reads
            images written by :func:`write`).

    Returns:
        A :class:`ganzoo.streams.ProceduralImages` whose hash covers the kind, the seed,
        the non-default options, the channels and :data:`GENERATOR_VERSION`.

    Raises:
        DatasetError: a bad spec, kind or option, a too small resolution, or channels other than 1 or 3.
    """
    kind, seed, options = parse_spec(spec)
    check_resolution(resolution)
    if channels not in (1, 3):
        raise DatasetError(f"{spec}: synthetic images have 1 or 3 channels, not {channels}")

    def render_stream(indices: np.ndarray) -> tuple[torch.Tensor, None]:
        return rgb_batch(render(kind, indices, resolution, seed, **options), channels), None

    definition = {"kind": kind, "seed": seed, "channels": channels, "generator": GENERATOR_VERSION}
    if options:  # only non-default options: the paper's streams keep the hashes they always had
        definition["options"] = options
    return ProceduralImages(render_stream, resolution, channels, spec, definition)
