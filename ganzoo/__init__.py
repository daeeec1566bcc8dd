"""ganzoo: a model zoo and checkpoint hub for pretrained GANs.

The public API::

    gan = ganzoo.load("path/to/checkpoint_dir_or_file.pkl")
    images = gan.sample(seeds=range(16), truncation_psi=0.7)   # uint8 [N, H, W, C]
    ganzoo.convert("network-snapshot.pkl", "my-checkpoint")
"""

from __future__ import annotations

__version__ = "0.1.0"

from ganzoo.api import convert, export, load  # noqa: E402
from ganzoo.checkpoint import GAN  # noqa: E402
from ganzoo.errors import (  # noqa: E402
    ChecksumMismatchError,
    CheckpointError,
    ConversionError,
    DatasetError,
    GanzooError,
    UnknownModelError,
    UnsafeCheckpointError,
)

__all__ = [
    "GAN",
    "CheckpointError",
    "ChecksumMismatchError",
    "ConversionError",
    "DatasetError",
    "GanzooError",
    "UnknownModelError",
    "UnsafeCheckpointError",
    "__version__",
    "convert",
    "export",
    "load",
]
