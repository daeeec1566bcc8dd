"""Distribution distances on feature arrays: FID and KID.

Both follow the StyleGAN2-ADA metrics code (Karras et al., 2020), the reference the published
numbers of the transfer papers come from:

* FID (Heusel et al., 2017): ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` with the
  covariance normalised by N (not N - 1), all in float64.
* KID (Bińkowski et al., 2018): the unbiased estimate of the squared MMD with the polynomial
  kernel ``k(x, y) = (x . y / d + 1)^3``, averaged over seeded random subsets.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganzoo.errors import DatasetError, GanzooError

# Kernel entries (float64) up to which KID precomputes whole kernel matrices: 3 x 2048^2 = 100 MB.
_KID_PRECOMPUTE_ENTRIES = 3 * 2048 * 2048

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


@contextlib.contextmanager
def few_threads(work: float):
    """Runs small linear algebra on one thread.

    Symmetric eigensolvers and small matrix products scale poorly with threads, and on a busy
    machine (other processes on the same cores) multi-threaded BLAS/LAPACK calls on small
    matrices spin-wait for each other: a 512x512 ``eigh`` measured 7.8 s on two contended cores
    against 0.08 s on one. ``work`` is a flop estimate; above ~1 GFLOP the threads pay off.
    """
    import torch

    if work > 1e9:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """``Tr((A B)^(1/2))`` for symmetric positive semi-definite A and B.

    ``A B`` is similar to the symmetric PSD matrix ``A^(1/2) B A^(1/2)``, so the trace of its
    square root is the sum of the square roots of that matrix's eigenvalues. Two symmetric
    eigendecompositions stay real and stable when the covariances are singular (fewer samples
    than dimensions), where a general ``sqrtm`` of ``A B`` returns complex noise or fails.
    Rounding can push zero eigenvalues slightly negative: they are clipped to 0.
    """
    import torch

    a = torch.from_numpy(np.ascontiguousarray(sigma_a, dtype=np.float64))
    b = torch.from_numpy(np.ascontiguousarray(sigma_b, dtype=np.float64))
    with few_threads(0):  # eigh is latency-bound: one thread is as fast and never stalls
        eigvals, eigvecs = torch.linalg.eigh(a)
        sqrt_a = (eigvecs * eigvals.clamp(min=0).sqrt()) @ eigvecs.T
        middle = sqrt_a @ b @ sqrt_a
        middle = (middle + middle.T) / 2  # exact symmetry for eigvalsh
        return float(torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum())


def _trace_sqrt_product_samples(real: np.ndarray, real_mu: np.ndarray, gen: np.ndarray, gen_mu: np.ndarray) -> float:
    """``Tr((S_r S_g)^(1/2))`` from the samples, for fewer samples than dimensions.

    With ``S_r = A^T A`` and ``S_g = B^T B`` (``A = (X_r - mu_r)/sqrt(N_r)``, likewise B), the
    non-zero eigenvalues of ``S_r S_g`` are those of ``(A B^T)(A B^T)^T``: the trace of the square
    root is the sum of the singular values of the ``N_r x N_g`` matrix ``A B^T``. That costs an SVD
    of the smaller matrix instead of two ``D x D`` eigendecompositions (D = 2048 for Inception).
    """
    import torch

    a = (torch.from_numpy(np.asarray(real, dtype=np.float64)) - torch.from_numpy(real_mu)) / np.sqrt(real.shape[0])
    b = (torch.from_numpy(np.asarray(gen, dtype=np.float64)) - torch.from_numpy(gen_mu)) / np.sqrt(gen.shape[0])
    with few_threads(0):
        return float(torch.linalg.svdvals(a @ b.T).sum())


def fid_from_stats(real: FeatureStats, gen: FeatureStats, real_features: Any = None, gen_features: Any = None) -> float:
    """FID between two sets of feature statistics.

    Args:
        real: statistics of the real (target) features.
        gen: statistics of the generated features.
        real_features: optionally the real features themselves; with ``gen_features`` and
            fewer samples than dimensions, the trace term is computed from the samples (same
            value, much cheaper).
        gen_features: optionally the generated features.

    Returns:
        The Fréchet distance (float).
    """
    if real.mu.shape != gen.mu.shape:
        raise GanzooError(f"FID: real statistics are {real.mu.shape[0]}-d, generated ones {gen.mu.shape[0]}-d")
    diff = real.mu - gen.mu
    dim = real.mu.shape[0]
    if real_features is not None and gen_features is not None and max(len(real_features), len(gen_features)) < dim:
        cross = _trace_sqrt_product_samples(np.asarray(real_features), real.mu, np.asarray(gen_features), gen.mu)
    else:
        cross = _trace_sqrt_product(real.sigma, gen.sigma)
    return float(diff @ diff + np.trace(real.sigma) + np.trace(gen.sigma) - 2.0 * cross)


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
    return fid_from_stats(feature_stats(real_array), feature_stats(gen_array), real_array, gen_array)


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
    import torch

    dim = real_array.shape[1]
    n_gen, n_real = gen_array.shape[0], real_array.shape[0]
    m = min(n_real, n_gen, subset_size)
    rng = np.random.RandomState(seed)
    x_all = torch.from_numpy(gen_array)
    y_all = torch.from_numpy(real_array)
    # Small sets: build the three kernel matrices once and sum sub-blocks per subset (the same
    # sums as forming each subset's kernels, without 3 x num_subsets matrix products).
    whole = n_gen * n_gen + n_real * n_real + n_gen * n_real <= _KID_PRECOMPUTE_ENTRIES
    if whole:
        with few_threads((n_gen + n_real) ** 2 * dim):
            k_xx, k_yy, k_xy = ((x_all @ x_all.T / dim + 1) ** 3, (y_all @ y_all.T / dim + 1) ** 3,
                                (x_all @ y_all.T / dim + 1) ** 3)  # fmt: skip
    total = 0.0
    with few_threads(3 * m * m * dim):
        for _ in range(num_subsets):
            gen_idx = torch.from_numpy(rng.choice(n_gen, m, replace=False))
            real_idx = torch.from_numpy(rng.choice(n_real, m, replace=False))
            if whole:
                kxx = k_xx[gen_idx][:, gen_idx]
                kyy = k_yy[real_idx][:, real_idx]
                kxy = k_xy[gen_idx][:, real_idx]
            else:
                x, y = x_all[gen_idx], y_all[real_idx]
                kxx, kyy, kxy = (x @ x.T / dim + 1) ** 3, (y @ y.T / dim + 1) ** 3, (x @ y.T / dim + 1) ** 3
            within = kxx + kyy
            # Within-set sums leave out the diagonal (unbiased); the cross term keeps every pair.
            total += float((within.sum() - within.diagonal().sum()) / (m - 1) - kxy.sum() * 2 / m)
    return float(total / num_subsets / m)
