"""Metrics of generative models on feature arrays, and the feature extractors that make them.

On feature arrays (numpy or torch, ``[N, D]``)::

    from ganzoo import metrics
    metrics.fid(real, gen)                         # Fréchet distance, float64, 1/N covariance
    metrics.kid(real, gen, num_subsets=100, subset_size=1000, seed=0)
    metrics.precision_recall(real, gen, k=3)       # {'precision', 'recall'}
    metrics.density_coverage(real, gen, k=5)       # {'density', 'coverage'}

From images: :func:`ganzoo.metrics.features.get_extractor` (``inception-fid``, ``vgg16-pr``,
``timm:NAME``); :func:`ganzoo.metrics.evaluate.evaluate` compares a GAN with a dataset, with
features cached on disk (:mod:`ganzoo.metrics.cache`).

Names are imported lazily so ``import ganzoo.metrics`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "fid": "ganzoo.metrics.scores",
    "fid_from_stats": "ganzoo.metrics.scores",
    "feature_stats": "ganzoo.metrics.scores",
    "FeatureStats": "ganzoo.metrics.scores",
    "kid": "ganzoo.metrics.scores",
    "precision_recall": "ganzoo.metrics.manifold",
    "density_coverage": "ganzoo.metrics.manifold",
    "manifold_metrics": "ganzoo.metrics.manifold",
    "knn_radii": "ganzoo.metrics.manifold",
    "get_extractor": "ganzoo.metrics.features",
    "FeatureExtractor": "ganzoo.metrics.features",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'ganzoo.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
