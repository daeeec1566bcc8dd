"""k-NN manifold metrics: precision/recall (Kynkäänniemi et al., 2019) and density/coverage
(Naeem et al., 2020), computed in batches.

Precision and recall follow the StyleGAN2-ADA metrics code: each point of a manifold set gets
the radius of its k-th nearest neighbour within that set (not counting itself); a probe is
inside the manifold when its distance to some manifold point is **<=** that point's radius.
Precision is the share of generated samples inside the real manifold, recall the share of real
samples inside the generated manifold.

Density and coverage follow the authors' reference code (``prdc``): real radii as above, a
generated sample counts for a real point when their distance is strictly **<** the radius;
density = (number of such pairs) / (k * M), coverage = the share of real points whose nearest
generated sample lies strictly inside their ball.

Memory stays O(batch x N): no N x N matrix is ever formed. Self-distances are computed block by
block over the upper triangle only (each block serves both its rows and, transposed, its
columns), with a running top-(k+1) per row, so the k-NN radii cost half the distance
computations of a row-by-row scan. One pass over generated batches against all real points then
yields all four metrics at once.

Distances use ``|a|^2 + |b|^2 - 2 a.b`` (one matrix product per block) after subtracting the
mean of both sets, which leaves distances unchanged but keeps float32 cancellation small for
features with a large common offset (post-ReLU CNN features). Comparisons are done on squared
distances (monotone, so the same decisions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganzoo.errors import GanzooError
from ganzoo.metrics.scores import as_features, check_pair

__all__ = ["ManifoldRadii", "density_coverage", "knn_radii", "manifold_metrics", "precision_recall"]

# Bytes of one distance block: batches are sized so that a [rows, N] float block stays near this.
_BLOCK_BYTES = 64 << 20


@dataclass(frozen=True)
class ManifoldRadii:
    """Squared k-NN radii of a feature set, for several k at once.

    Attributes:
        squared: k -> ``[N]`` squared distance to the k-th nearest other point (numpy, the
            features' float dtype).
    """

    squared: dict[int, np.ndarray]

    def radius(self, k: int) -> np.ndarray:
        """The (not squared) k-NN radii."""
        return np.sqrt(self.squared[k])


def _torch_features(array: np.ndarray, device: Any, offset: np.ndarray):
    import torch

    dtype = torch.float64 if array.dtype == np.float64 else torch.float32
    centred = np.asarray(array - offset, dtype=np.float64 if dtype == torch.float64 else np.float32)
    return torch.from_numpy(np.ascontiguousarray(centred)).to(device)


def _block_rows(n_cols: int, elem_bytes: int, batch_size: int | None) -> int:
    if batch_size is not None:
        if batch_size < 1:
            raise GanzooError(f"batch_size must be >= 1, not {batch_size}")
        return batch_size
    return int(max(64, min(4096, _BLOCK_BYTES // max(1, n_cols * elem_bytes))))


def _self_block(elem_bytes: int, batch_size: int | None) -> int:
    # Square blocks of the self-distance pass: ~16 MB each (2048 rows in float32). Measured on
    # 8000 x 2048 features: 1000-row blocks 4.1-4.9 s, 2000 rows 3.5-3.7 s, 4000 rows 3.8-3.9 s.
    if batch_size is not None:
        return _block_rows(0, elem_bytes, batch_size)
    return math.isqrt((16 << 20) // elem_bytes)


def _squared_distances(rows, rows_sq, cols, cols_sq):
    # [B, N]: |a|^2 + |b|^2 - 2 a.b, clamped at 0 (rounding can make it slightly negative).
    # addmm folds the column norms and the factor -2 into the matrix product's output pass.
    import torch

    out = torch.addmm(cols_sq[None, :], rows, cols.T, beta=1, alpha=-2)
    return out.add_(rows_sq[:, None]).clamp_(min=0)


def _knn_squared(features, kmax: int, block: int):
    """[N, kmax + 1] smallest squared distances of each row to all rows (itself included, at 0)."""
    import torch

    n = features.shape[0]
    kk = kmax + 1
    sq = (features * features).sum(dim=1)
    best = torch.full((n, kk), float("inf"), dtype=features.dtype, device=features.device)
    starts = list(range(0, n, block))
    for i in starts:
        rows, rows_sq = features[i : i + block], sq[i : i + block]
        for j in starts:
            if j < i:
                continue  # the block (j, i) was done as the transpose of (i, j)
            cols_sq = sq[j : j + block]
            # partial = |b|^2 - 2 a.b: a row's smallest entries are its smallest distances (the
            # row's own |a|^2 is a constant added afterwards to the k+1 survivors only).
            partial = torch.addmm(cols_sq[None, :], rows, features[j : j + block].T, beta=1, alpha=-2)
            if i == j:
                partial.diagonal().copy_(-rows_sq)  # a point's distance to itself is exactly 0, as in cdist
            # Select within the block first, then merge into the running k+1 smallest.
            smallest = partial.topk(min(kk, partial.shape[1]), dim=1, largest=False).values + rows_sq[:, None]
            best[i : i + block] = torch.cat([best[i : i + block], smallest], dim=1).topk(kk, dim=1, largest=False).values
            if i != j:
                partial.add_(rows_sq[:, None])  # now full squared distances, for the columns' view
                smallest = partial.topk(min(kk, partial.shape[0]), dim=0, largest=False).values.T
                best[j : j + block] = torch.cat([best[j : j + block], smallest], dim=1).topk(kk, dim=1, largest=False).values
    return best.clamp_(min=0)  # rounding can make near-duplicates' distances slightly negative


def _prepare(real: Any, gen: Any, minimum: int, metric: str, device: Any):
    import torch

    real_array = as_features(real, "real features")
    gen_array = as_features(gen, "generated features")
    check_pair(real_array, gen_array, minimum, metric)
    # float64 inputs are computed in float64 (exact reference checks); anything else in float32.
    wide = real_array.dtype == np.float64 and gen_array.dtype == np.float64
    real_array = real_array.astype(np.float64 if wide else np.float32, copy=False)
    gen_array = gen_array.astype(np.float64 if wide else np.float32, copy=False)
    offset = (real_array.mean(axis=0, dtype=np.float64) + gen_array.mean(axis=0, dtype=np.float64)) / 2
    device = torch.device(device) if device is not None else torch.device("cpu")
    return (_torch_features(real_array, device, offset), _torch_features(gen_array, device, offset), offset)


def knn_radii(features: Any, ks: tuple[int, ...] = (3, 5), batch_size: int | None = None,
              device: Any = None, offset: np.ndarray | None = None) -> ManifoldRadii:  # fmt: skip
    """Squared distances of each point to its k-th nearest other point, for every k in ``ks``.

    Args:
        features: ``[N, D]`` array or tensor.
        ks: neighbourhood sizes.
        batch_size: rows per distance block (default: sized to ~64 MB blocks).
        device: torch device of the computation (default CPU).
        offset: a vector subtracted from every row first (does not change distances).

    Returns:
        The :class:`ManifoldRadii`.
    """
    import torch

    array = as_features(features, "features")
    if array.dtype != np.float64:
        array = array.astype(np.float32, copy=False)
    kmax = max(ks)
    if array.shape[0] < kmax + 1:
        from ganzoo.errors import DatasetError

        raise DatasetError(f"k-NN radii with k={kmax}: {array.shape[0]} samples, it needs at least {kmax + 1}")
    if offset is None:
        offset = array.mean(axis=0, dtype=np.float64)
    tensor = _torch_features(array, torch.device(device) if device is not None else torch.device("cpu"), offset)
    block = _self_block(tensor.element_size(), batch_size)
    with torch.no_grad():
        best = _knn_squared(tensor, kmax, block)
    return ManifoldRadii({k: best[:, k].cpu().numpy() for k in ks})


def manifold_metrics(
    real: Any,
    gen: Any,
    k_pr: int | None = 3,
    k_dc: int | None = 5,
    batch_size: int | None = None,
    device: Any = None,
    real_radii: ManifoldRadii | None = None,
) -> dict[str, float]:
    """Precision, recall, density and coverage in one batched pass.

    Args:
        real: ``[N, D]`` real features.
        gen: ``[M, D]`` generated features.
        k_pr: k of precision/recall, or None to skip them.
        k_dc: k of density/coverage, or None to skip them.
        batch_size: rows per distance block (default: sized to ~64 MB blocks).
        device: torch device of the computation (default CPU); e.g. ``"cuda"``.
        real_radii: precomputed :func:`knn_radii` of ``real`` holding the needed k (rank reuses
            the target's radii across candidates). Radii do not depend on the offset.

    Returns:
        ``{'precision', 'recall'}`` and/or ``{'density', 'coverage'}`` as floats.

    Raises:
        DatasetError: a set with fewer than k + 1 samples.
    """
    import torch

    if k_pr is None and k_dc is None:
        raise GanzooError("manifold_metrics: nothing to compute (k_pr and k_dc are both None)")
    for name, k in (("k", k_pr), ("k", k_dc)):
        if k is not None and k < 1:
            raise GanzooError(f"{name} must be >= 1, not {k}")
    needed = max(k for k in (k_pr, k_dc) if k is not None)
    metric = "precision/recall" if k_dc is None else "density/coverage" if k_pr is None else "precision/recall/density/coverage"
    real_t, gen_t, _ = _prepare(real, gen, needed + 1, f"{metric} with k={needed}", device)
    ks = tuple(k for k in (k_pr, k_dc) if k is not None)
    block_gen = _block_rows(real_t.shape[0], real_t.element_size(), batch_size)  # rows of [B, N_real] blocks
    with torch.no_grad():
        if real_radii is not None and all(k in real_radii.squared for k in ks):
            real_best = {k: torch.as_tensor(real_radii.squared[k], dtype=real_t.dtype, device=real_t.device) for k in ks}
            if real_best[ks[0]].shape[0] != real_t.shape[0]:
                raise GanzooError("manifold_metrics: real_radii were computed for another real set")
        else:
            best = _knn_squared(real_t, max(ks), _self_block(real_t.element_size(), batch_size))
            real_best = {k: best[:, k].contiguous() for k in ks}
        gen_radius = None
        if k_pr is not None:
            gen_radius = _knn_squared(gen_t, k_pr, _self_block(gen_t.element_size(), batch_size))[:, k_pr].contiguous()

        real_sq = (real_t * real_t).sum(dim=1)
        gen_sq = (gen_t * gen_t).sum(dim=1)
        n_real, n_gen = real_t.shape[0], gen_t.shape[0]
        precision_hits = 0
        recalled = torch.zeros(n_real, dtype=torch.bool, device=real_t.device)
        density_pairs = 0
        nearest_gen = torch.full((n_real,), float("inf"), dtype=real_t.dtype, device=real_t.device)
        for start in range(0, n_gen, block_gen):
            dist = _squared_distances(gen_t[start : start + block_gen], gen_sq[start : start + block_gen], real_t, real_sq)
            if k_pr is not None:
                precision_hits += int((dist <= real_best[k_pr][None, :]).any(dim=1).sum())
                recalled |= (dist <= gen_radius[start : start + block_gen, None]).any(dim=0)
            if k_dc is not None:
                density_pairs += int((dist < real_best[k_dc][None, :]).sum())
                nearest_gen = torch.minimum(nearest_gen, dist.min(dim=0).values)
    out: dict[str, float] = {}
    if k_pr is not None:
        out["precision"] = precision_hits / n_gen
        out["recall"] = float(recalled.float().mean())
    if k_dc is not None:
        out["density"] = density_pairs / (k_dc * n_gen)
        out["coverage"] = float((nearest_gen < real_best[k_dc]).float().mean())
    return out


def precision_recall(real: Any, gen: Any, k: int = 3, batch_size: int | None = None, device: Any = None) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019).

    Args:
        real: ``[N, D]`` real features (numpy array or torch tensor).
        gen: ``[M, D]`` generated features.
        k: neighbourhood size of the manifold radii.
        batch_size: rows per distance block (default: sized to ~64 MB blocks); memory is
            O(batch_size x max(N, M)).
        device: torch device of the distance computation (default CPU).

    Returns:
        ``{'precision': float, 'recall': float}``.

    Raises:
        DatasetError: a set with fewer than k + 1 samples.
    """
    return manifold_metrics(real, gen, k_pr=k, k_dc=None, batch_size=batch_size, device=device)


def density_coverage(real: Any, gen: Any, k: int = 5, batch_size: int | None = None, device: Any = None) -> dict[str, float]:
    """Density and coverage (Naeem et al., 2020).

    Args:
        real: ``[N, D]`` real features.
        gen: ``[M, D]`` generated features.
        k: neighbourhood size of the real radii.
        batch_size: rows per distance block (default: sized to ~64 MB blocks).
        device: torch device of the distance computation (default CPU).

    Returns:
        ``{'density': float, 'coverage': float}``.

    Raises:
        DatasetError: a set with fewer than k + 1 samples.
    """
    return manifold_metrics(real, gen, k_pr=None, k_dc=k, batch_size=batch_size, device=device)
