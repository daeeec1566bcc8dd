"""Image helpers shared by the CLI and the Hub card renderer."""

from __future__ import annotations

import math


def image_grid(images):
    """Tiles uint8 images ``[N, H, W, C]`` into one ``[rows*H, cols*W, C]`` grid, row-major,
    with ``cols = ceil(sqrt(N))`` (empty cells stay black)."""
    import numpy as np  # imported here: `ganzoo list`/`info` must start without numpy or torch

    n, h, w, c = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros([rows * h, cols * w, c], dtype=np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, cols)
        grid[r * h : (r + 1) * h, col * w : (col + 1) * w] = img
    return grid
