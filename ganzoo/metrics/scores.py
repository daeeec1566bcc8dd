"""Distribution distances on feature arrays: FID and KID.

Both follow the StyleGAN2-ADA metrics code (Karras et al., 2020), the reference the published
numbers of the transfer papers come from:

* FID (Heusel et al., 2017): ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` with the
  covariance normalised by N (not N - 1), all in float64.
* KID (Bińkowski et al., 2018): the unbiased estimate of the squared MMD with the polynomial
  kernel ``k(x, y) = (x . y / d + 1)^3``, averaged over seeded random subsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ganzoo.errors import DatasetError, GanzooError

__all__ = ["FeatureStats", "feature_stats", "fid", "fid_from_stats", "kid"]


def as_features(features: Any, what: str, dtype: Any = None) -> np.ndarray:
    """Returns ``features`` as a 2-D numpy array ``[N, D]`` (torch tensors are copied to CPU).

    Raises:
        GanzooError: not 2-D, or holds NaN/inf.
    """
    if hasattr(features, "detach"):  # a torch tensor: avoid importing torch for numpy inputs
        features = features.detach().cpu().numpy()
    array = np.asarray(features, dtype=dtype)
    if array.ndim != 2:
        raise GanzooError(f"{what}: expected a feature array [N, D], got shape {tuple(array.shape)}")
    if array.size and not np.isfinite(array).all():
        raise GanzooError(f"{what}: features hold NaN or inf values")
    return array


def check_pair(real: np.ndarray, gen: np.ndarray, minimum: int, metric: str) -> None:
    """Checks that both sets have the same feature size and at least ``minimum`` rows.

    Raises:
        GanzooError: different feature sizes.
        DatasetError: a set with fewer than ``minimum`` rows (the message says which and why).
    """
    if real.shape[1] != gen.shape[1]:
        raise GanzooError(f"{metric}: real features are {real.shape[1]}-d, generated ones {gen.shape[1]}-d")
    for name, array in (("real", real), ("generated", gen)):
        if array.shape[0] < minimum:
            raise DatasetError(f"{metric}: {array.shape[0]} {name} samples, it needs at least {minimum}")


@dataclass(frozen=True)
class FeatureStats:
    """Mean and covariance of a feature set (float64), what FID compares.

    Attributes:
        mu: ``[D]`` mean.
        sigma: ``[D, D]`` covariance, normalised by ``num_samples``.
        num_samples: how many feature vectors they summarise.
    """

    mu: np.ndarray
    sigma: np.ndarray
    num_samples: int


def feature_stats(features: Any, chunk_size: int = 8192) -> FeatureStats:
    """Mean and 1/N covariance of ``features`` in float64, accumulated in chunks.

    Accumulating sums chunk by chunk keeps memory at one float64 chunk even when the features
    are float32 and large; the centring happens once at the end (``E[xx^T] - mu mu^T``), which
    is the StyleGAN2-ADA formula.

    Args:
        features: ``[N, D]`` array or tensor.
        chunk_size: rows converted to float64 at a time.

    Returns:
        The :class:`FeatureStats`.
    """
    array = as_features(features, "features")
    n, dim = array.shape
    if n == 0:
        raise DatasetError("FID: no samples to compute feature statistics from")
    total = np.zeros(dim, dtype=np.float64)
    outer = np.zeros((dim, dim), dtype=np.float64)
    for start in range(0, n, chunk_size):
        chunk = np.asarray(array[start : start + chunk_size], dtype=np.float64)
        total += chunk.sum(axis=0)
        outer += chunk.T @ chunk
    mu = total / n
    sigma = outer / n - np.outer(mu, mu)
    return FeatureStats(mu=mu, sigma=sigma, num_samples=n)


def _trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """``Tr((A B)^(1/2))`` for symmetric positive semi-definite A and B.

    ``A B`` is similar to the symmetric PSD matrix ``A^(1/2) B A^(1/2)``, so the trace of its
    square root is the sum of the square roots of that matrix's eigenvalues. Two symmetric
    eigendecompositions stay real and stable when the covariances are singular (fewer samples
    than dimensions), where a general ``sqrtm`` of ``A B`` returns complex noise or fails.
    Rounding can push zero eigenvalues slightly negative: they are clipped to 0.
    """
    eigvals, eigvecs = np.linalg.eigh(sigma_a)
    sqrt_a = (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T
    middle = sqrt_a @ sigma_b @ sqrt_a
    middle = (middle + middle.T) / 2  # exact symmetry for eigvalsh
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)).sum())


def fid_from_stats(real: FeatureStats, gen: FeatureStats) -> float:
    """FID between two sets of feature statistics.

    Args:
        real: statistics of the real (target) features.
        gen: statistics of the generated features.

    Returns:
        The Fréchet distance (float).
    """
    if real.mu.shape != gen.mu.shape:
        raise GanzooError(f"FID: real statistics are {real.mu.shape[0]}-d, generated ones {gen.mu.shape[0]}-d")
    diff = real.mu - gen.mu
    trace_term = np.trace(real.sigma) + np.trace(gen.sigma) - 2.0 * _trace_sqrt_product(real.sigma, gen.sigma)
    return float(diff @ diff + trace_term)


def fid(real: Any, gen: Any) -> float:
    """Fréchet Inception Distance between two feature sets (lower is better).

    Args:
        real: ``[N, D]`` features of real images (numpy array or torch tensor).
        gen: ``[M, D]`` features of generated images.

    Returns:
        The FID, computed in float64 with the 1/N covariance.

    Raises:
        DatasetError: a set with fewer than 2 samples.
    """
    real_array = as_features(real, "real features")
    gen_array = as_features(gen, "generated features")
    check_pair(real_array, gen_array, 2, "FID")
    return fid_from_stats(feature_stats(real_array), feature_stats(gen_array))


def kid(real: Any, gen: Any, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> float:
    """Kernel Inception Distance: unbiased MMD² with the kernel ``(x . y / d + 1)^3`` (lower is better).

    Each of ``num_subsets`` rounds draws ``m = min(len(real), len(gen), subset_size)`` generated
    and ``m`` real rows without replacement (generated first, then real, from one
    ``numpy.random.RandomState(seed)``), and the estimates are averaged. The value is the raw
    MMD², not multiplied by 1000 as some papers print it.

    Args:
        real: ``[N, D]`` real features.
        gen: ``[M, D]`` generated features.
        num_subsets: number of random subsets.
        subset_size: the largest subset size.
        seed: seed of the subset draws (same seed, same value).

    Returns:
        The KID (float).

    Raises:
        DatasetError: a set with fewer than 2 samples.
        GanzooError: ``num_subsets`` or ``subset_size`` below 1 or 2.
    """
    real_array = as_features(real, "real features", dtype=np.float64)
    gen_array = as_features(gen, "generated features", dtype=np.float64)
    check_pair(real_array, gen_array, 2, "KID")
    if num_subsets < 1:
        raise GanzooError(f"KID: num_subsets must be >= 1, not {num_subsets}")
    if subset_size < 2:
        raise GanzooError(f"KID: subset_size must be >= 2, not {subset_size}")
    dim = real_array.shape[1]
    m = min(real_array.shape[0], gen_array.shape[0], subset_size)
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = gen_array[rng.choice(gen_array.shape[0], m, replace=False)]
        y = real_array[rng.choice(real_array.shape[0], m, replace=False)]
        within = (x @ x.T / dim + 1) ** 3 + (y @ y.T / dim + 1) ** 3
        between = (x @ y.T / dim + 1) ** 3
        # Within-set sums leave out the diagonal (unbiased); the cross term keeps every pair.
        total += (within.sum() - np.trace(within)) / (m - 1) - between.sum() * 2 / m
    return float(total / num_subsets / m)
