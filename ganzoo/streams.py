"""Procedural image streams: training images made on the fly, image ``i`` a pure function of ``i``.

The one home of :class:`ProceduralImages`, below everything that makes or consumes streams:
:mod:`ganzoo.synth` (synthetic pretraining data), :mod:`ganzoo.starter` (toy domains),
:mod:`ganzoo.cocktail` (merging's sample streams) and :mod:`ganzoo.train` (which trains on
them). It imports none of them, so ``synth`` and ``train.dataset`` no longer import each other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import torch

from ganzoo.errors import DatasetError

__all__ = ["ProceduralImages", "rgb_batch"]


class ProceduralImages:
    """An endless stream of images made on the fly: image ``i`` is a pure function of the stream's
    definition and ``i``, so nothing is stored and a resumed run sees the same images.

    Used for synthetic pretraining data (``synth:KIND``) and for the generated "procedural data"
    of GAN merging. Draw ``n`` of a training run is image ``n`` (no epochs, no repeats).

    Args:
        render: ``render(indices: int64 ndarray) -> (uint8 tensor [N, C, R, R], float labels [N, c_dim] or None)``.
        resolution, channels: the image size ``render`` produces.
        spec: a short text naming the stream (recorded as the data ``path``; for ``synth:KIND``
            streams it is what ``--data`` took, so resume can rebuild the stream from it).
        definition: JSON-able settings that determine the images (hashed into ``sha256``).
        label_fn: ``label_fn(indices) -> [N, c_dim]`` labels without rendering (conditional streams).
    """

    mirror = False
    resampled = False
    labels = None
    LENGTH = 2**62

    def __init__(self, render: Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor | None]], resolution: int,
                 channels: int, spec: str, definition: dict,
                 label_fn: Callable[[np.ndarray], torch.Tensor] | None = None):  # fmt: skip
        self.render = render
        self._resolution = int(resolution)
        self._channels = int(channels)
        self.path = spec
        self.definition = dict(definition)
        self.label_fn = label_fn
        blob = json.dumps({"spec": spec, **self.definition}, sort_keys=True, default=str).encode()
        self.sha256 = hashlib.sha256(blob).hexdigest()
        self.notes: list[str] = []

    def __len__(self) -> int:
        return self.LENGTH

    @property
    def resolution(self) -> int:
        return self._resolution

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def has_labels(self) -> bool:
        return self.label_fn is not None

    def get(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        images, labels = self.render(np.asarray(indices, dtype=np.int64))
        images = torch.as_tensor(images)
        expected = (self._channels, self._resolution, self._resolution)
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != expected:
            raise DatasetError(f"{self.path}: the stream made {images.dtype} {list(images.shape)}, expected uint8 [N, {expected[0]}, {expected[1]}, {expected[2]}]")
        return images, labels

    def labels_at(self, indices: torch.Tensor) -> torch.Tensor | None:
        return None if self.label_fn is None else self.label_fn(np.asarray(indices, dtype=np.int64))

    def draw(self, seed: int, start: int, count: int) -> torch.Tensor:
        """Draw ``n`` is image ``n``: the stream itself is the shuffle (``seed`` is the stream's own)."""
        return torch.arange(start, start + count, dtype=torch.int64)

    def describe(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "procedural": True, "definition": self.definition,
                "resolution": self.resolution, "mirror": False, "resampled": False}  # fmt: skip


def rgb_batch(images: np.ndarray, channels: int) -> torch.Tensor:
    """uint8 RGB images ``[N, H, W, 3]`` as a training batch, uint8 ``[N, C, H, W]``; ``C = 1``
    is PIL's ITU-R 601 luma, as :mod:`ganzoo.data` reads grayscale (for procedural streams)."""
    if channels == 1:
        from PIL import Image

        images = np.stack([np.asarray(Image.fromarray(image).convert("L")) for image in images])[..., None]
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
