"""The grid of samples a pushed checkpoint's card shows (``samples.png``)."""

from __future__ import annotations

import io
import os
from typing import Any, Iterable


def samples_png(checkpoint_dir: str | os.PathLike, seeds: Iterable[int] = range(16), truncation_psi: float = 0.7) -> bytes:
    """A PNG grid of samples from a checkpoint (what a pushed card shows)."""
    from ganzoo.checkpoint import GAN

    return gan_samples_png(GAN.load(checkpoint_dir, verify=False), seeds, truncation_psi)


def gan_samples_png(gan: Any, seeds: Iterable[int] = range(16), truncation_psi: float = 0.7) -> bytes:
    """A PNG grid of samples from a GAN in hand (class 0 of a conditional one)."""
    from PIL import Image

    from ganzoo.images import image_grid

    class_idx = 0 if gan.metadata.num_classes else None
    images = gan.sample(seeds=list(seeds), truncation_psi=truncation_psi, class_idx=class_idx)
    grid = image_grid(images)
    image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
