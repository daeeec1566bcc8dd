"""Feature sets of datasets and of generator samples, cached on disk.

A :class:`FeatureSet` holds float32 features ``[N, D]`` and, once computed, their FID statistics
(float64 mean and covariance) and squared k-NN radii. It is stored as one safetensors file in
``GANZOO_CACHE/features/`` named by the sha256 of its key:

* datasets: the dataset's content hash (names + bytes of every image), its preprocessing
  (resolution, channels, resize filter, crop) and the extractor (name, input size, weights);
* samples: the generator's weights (sha256 of ``generator.safetensors``, or of the tensors of an
  in-memory GAN), the seeds, truncation, noise mode and class schedule, and the extractor.

So a second run on an unchanged target or candidate costs a hash and a file read. Files are
written atomically; a file whose recorded key differs from the expected one is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganzoo.errors import GanzooError

if TYPE_CHECKING:  # pragma: no cover
    from ganzoo.checkpoint import GAN
    from ganzoo.data import ImageDataset
    from ganzoo.metrics.features import FeatureExtractor
    from ganzoo.metrics.manifold import ManifoldRadii
    from ganzoo.metrics.scores import FeatureStats

__all__ = ["FeatureSet", "dataset_features", "gan_fingerprint", "checkpoint_fingerprint", "sample_features",
           "sample_plan", "read_feature_file", "write_feature_file"]  # fmt: skip

FEATURES_DIR = "features"
MAX_SAMPLES = 10_000_000  # generated samples for one metric (fid50k uses 50k): a guard against a typo
NOISE_MODE = "random"  # as in the StyleGAN2-ADA metrics: per-image noise, seeded by the image's seed


def _cache_dir() -> Path:
    from ganzoo._io import cache_home

    return cache_home() / FEATURES_DIR


def key_digest(key: dict) -> str:
    """sha256 of a JSON key (sorted keys): cache file names and equality checks use it."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


@dataclass
class FeatureSet:
    """Features of one image set, with lazily computed (and cached) statistics and radii.

    Attributes:
        features: float32 ``[N, D]``.
        key: what made them (JSON-able).
        origin: ``"cache"``, ``"computed"`` or ``"hub"``.
        path: the cache file, when cached.
        skipped: unreadable files skipped while computing them (datasets only).
    """

    features: np.ndarray
    key: dict
    origin: str = "computed"
    path: Path | None = None
    skipped: list[str] = field(default_factory=list)
    _stats: Any = None
    _radii: dict[int, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def stats(self) -> "FeatureStats":
        """FID statistics of the features (computed once, then saved with the cache file)."""
        from ganzoo.metrics.scores import feature_stats

        if self._stats is None:
            self._stats = feature_stats(self.features)
            self._save_extras()
        return self._stats

    def radii(self, ks: tuple[int, ...] = (3, 5)) -> "ManifoldRadii":
        """Squared k-NN radii for each k in ``ks`` (computed once, then saved with the cache file)."""
        from ganzoo.metrics.manifold import ManifoldRadii, knn_radii

        missing = tuple(k for k in ks if k not in self._radii)
        if missing:
            self._radii.update(knn_radii(self.features, ks=missing).squared)
            self._save_extras()
        return ManifoldRadii({k: self._radii[k] for k in ks})

    def _save_extras(self) -> None:
        if self.path is not None:
            _write_cache(self.path, self)


def _write_cache(path: Path, feature_set: "FeatureSet") -> None:
    """Writes a cache file; a cache that cannot be written (read-only, full) costs a warning and
    a recomputation next time, never the results computed now."""
    try:
        write_feature_file(path, feature_set)
    except OSError as exc:  # OutputError included
        warnings.warn(f"feature cache not written: {exc}", stacklevel=3)


def write_feature_file(path: str | os.PathLike, feature_set: FeatureSet) -> Path:
    """Writes features (+ statistics and radii, when computed) to a safetensors file atomically."""
    from ganzoo._io import atomic_path
    from ganzoo._safetensors_write import save_file  # sorted metadata: the same bytes every time

    tensors = {"features": np.ascontiguousarray(feature_set.features, dtype=np.float32)}
    if feature_set._stats is not None:
        tensors["mu"] = feature_set._stats.mu
        tensors["sigma"] = feature_set._stats.sigma
    for k, value in feature_set._radii.items():
        tensors[f"radii_sq_k{k}"] = np.ascontiguousarray(value)
    metadata = {"key": json.dumps(feature_set.key, sort_keys=True), "skipped": json.dumps(feature_set.skipped)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def read_feature_file(path: str | os.PathLike, origin: str = "cache") -> FeatureSet:
    """Reads a file written by :func:`write_feature_file` (or published on the Hub).

    Raises:
        GanzooError: not a readable feature file.
    """
    from safetensors import safe_open

    from ganzoo.metrics.scores import FeatureStats

    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
        key = json.loads(metadata.get("key", "{}"))
        skipped = json.loads(metadata.get("skipped", "[]"))
    except Exception as exc:  # noqa: BLE001 - header errors, truncated files, bad JSON
        raise GanzooError(f"{path}: not a readable feature file ({str(exc).splitlines()[0]})") from None
    if "features" not in tensors or tensors["features"].ndim != 2:
        raise GanzooError(f"{path}: no 2-D 'features' tensor")
    feature_set = FeatureSet(tensors["features"], key, origin=origin, path=path if origin == "cache" else None, skipped=skipped)
    if "mu" in tensors and "sigma" in tensors:
        feature_set._stats = FeatureStats(tensors["mu"], tensors["sigma"], len(feature_set))
    for name, value in tensors.items():
        if name.startswith("radii_sq_k") and name[len("radii_sq_k") :].isdigit():
            feature_set._radii[int(name[len("radii_sq_k") :])] = value
    return feature_set


def _cached(key: dict, prefix: str) -> tuple[Path, FeatureSet | None]:
    path = _cache_dir() / f"{prefix}-{key_digest(key)[:40]}.safetensors"
    if path.is_file():
        try:
            feature_set = read_feature_file(path)
        except GanzooError:
            return path, None  # a damaged cache file is recomputed and replaced
        if feature_set.key == key:
            return path, feature_set
    return path, None


def dataset_features(dataset: "ImageDataset", extractor: "FeatureExtractor", progress: bool = True,
                     batch_size: int = 32, use_cache: bool = True) -> FeatureSet:  # fmt: skip
    """Features of every readable image of a dataset, from the cache when unchanged.

    Args:
        dataset: the images.
        extractor: the feature extractor.
        progress: show a progress bar while extracting.
        batch_size: images read per batch.
        use_cache: read and write the on-disk cache.

    Returns:
        The :class:`FeatureSet` (``origin`` says whether it came from the cache).
    """
    key = {"kind": "dataset", "content_sha256": dataset.content_hash(), **dataset.settings(), **extractor.cache_key()}
    path, hit = _cached(key, "dataset") if use_cache else (None, None)
    if hit is not None:
        # The same files are unreadable: said (or refused, with strict) as the first pass did.
        dataset.report_unreadable(list(hit.skipped), stacklevel=2)
        return hit
    features = extractor.extract(dataset.iter_batches(batch_size), total=len(dataset),
                                 description=f"features of {dataset.path.name or dataset.path}", progress=progress)  # fmt: skip
    feature_set = FeatureSet(features, key, origin="computed", path=path, skipped=list(dataset.skipped))
    if path is not None:
        _write_cache(path, feature_set)
    return feature_set


# ------------------------------------------------------------------------------------------------
# Generator samples


def gan_fingerprint(gan: "GAN") -> str:
    """sha256 identifying a GAN's EMA generator weights.

    A GAN saved as a checkpoint directory already records its ``generator.safetensors`` sha256
    in its config; otherwise the tensors (names, shapes, dtypes, bytes) are hashed.
    """
    recorded = (gan.config.get("files") or {}).get("generator.safetensors", {})
    if isinstance(recorded, dict) and isinstance(recorded.get("sha256"), str):
        return recorded["sha256"]
    digest = hashlib.sha256(b"ganzoo-generator-tensors\0")
    for name, tensor in sorted(gan.G_ema.state_dict().items()):
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def checkpoint_fingerprint(directory: str | os.PathLike) -> str:
    """The verified sha256 of a checkpoint directory's ``generator.safetensors``, without loading it.

    Raises:
        CheckpointError / ChecksumMismatchError: not a checkpoint, or the file does not match.
    """
    from ganzoo._io import verify_sha256
    from ganzoo.checkpoint import read_config
    from ganzoo.errors import CheckpointError

    directory = Path(directory)
    config = read_config(directory)
    recorded = (config.get("files") or {}).get("generator.safetensors", {})
    digest = recorded.get("sha256") if isinstance(recorded, dict) else None
    if not isinstance(digest, str):
        raise CheckpointError(f"{directory}: config.json records no sha256 for generator.safetensors")
    verify_sha256(directory / "generator.safetensors", digest)  # remembered: cheap when unchanged
    return digest


def check_num_samples(num: int, dim: int | None = None, option: str = "--num-gen") -> None:
    """Refuses a sample count out of range (1 to :data:`MAX_SAMPLES`) or whose features
    (``num`` x ``dim`` float32, held twice while they are gathered) would not fit in this
    machine's memory: one line before any sampling."""
    from ganzoo.resources import machine_memory

    if num < 1:
        raise GanzooError(f"{option} {num}: the number of generated samples must be at least 1")
    if num > MAX_SAMPLES:
        raise GanzooError(f"{option} {num}: at most {MAX_SAMPLES:,} generated samples")
    total = machine_memory()
    if dim is not None and total is not None and 2 * 4 * num * dim > total:
        raise GanzooError(f"{option} {num}: {num:,} features of {dim} values need about "
                          f"{8 * num * dim / 2**30:.0f} GiB of memory, this machine has {total / 2**30:.0f} GiB")  # fmt: skip


def sample_plan(num: int, seed: int, c_dim: int, class_idx: int | None = None) -> dict:
    """How samples for metrics are drawn: seeds ``seed .. seed+num-1``, truncation 1, per-image
    random noise seeded by the seed, and for conditional models class ``i % c_dim`` for image i
    (or every image of class ``class_idx`` when given: the metrics of one class)."""
    classes = None if not c_dim else "index-mod-c_dim" if class_idx is None else f"only-{int(class_idx)}"
    return {"num": int(num), "first_seed": int(seed), "truncation_psi": 1.0, "noise_mode": NOISE_MODE,
            "classes": classes}  # fmt: skip


def _sample_batches(gan: "GAN", num: int, seed: int, batch_size: int, class_idx: int | None = None):
    c_dim = gan.metadata.num_classes
    for start in range(0, num, batch_size):
        seeds = list(range(seed + start, seed + min(num, start + batch_size)))
        if not c_dim or class_idx is not None:
            yield gan.sample(seeds=seeds, truncation_psi=1.0, noise_mode=NOISE_MODE, batch_size=batch_size,
                             class_idx=class_idx if c_dim else None)  # fmt: skip
            continue
        # Conditional: image i gets class i % c_dim; sample per class, then restore seed order.
        images = [None] * len(seeds)
        for cls in range(c_dim):
            members = [j for j, s in enumerate(seeds) if (s - seed) % c_dim == cls]
            if members:
                out = gan.sample(seeds=[seeds[j] for j in members], truncation_psi=1.0, class_idx=cls,
                                 noise_mode=NOISE_MODE, batch_size=batch_size)  # fmt: skip
                for j, image in zip(members, out):
                    images[j] = image
        yield np.stack(images)


def sample_features(gan: "GAN | None", extractor: "FeatureExtractor", num: int, seed: int = 0,
                    fingerprint: str | None = None, c_dim: int | None = None, loader: Any = None,
                    description: str = "samples", progress: bool = True, batch_size: int = 16,
                    use_cache: bool = True, class_idx: int | None = None) -> FeatureSet:  # fmt: skip
    """Features of ``num`` seeded samples of a GAN, from the cache when the generator is unchanged.

    Args:
        gan: the GAN, or None together with ``fingerprint``, ``c_dim`` and ``loader`` (a callable
            returning the GAN) so that a cache hit never loads the networks.
        extractor: the feature extractor.
        num: number of samples.
        seed: first seed (seeds ``seed .. seed+num-1``).
        fingerprint: :func:`gan_fingerprint` / :func:`checkpoint_fingerprint` when known.
        c_dim: the generator's number of classes (with ``gan=None``).
        loader: returns the GAN on a cache miss (with ``gan=None``).
        description: the progress bar's label.
        progress: show a progress bar while sampling.
        batch_size: images per generator forward pass.
        use_cache: read and write the on-disk cache.
        class_idx: a conditional GAN's class that every sample is of (None: class ``i % c_dim``).

    Returns:
        The :class:`FeatureSet`.
    """
    check_num_samples(num, extractor.dim)
    if gan is None and (fingerprint is None or c_dim is None or loader is None):
        raise GanzooError("sample_features: give a GAN, or fingerprint, c_dim and loader")
    fingerprint = fingerprint or gan_fingerprint(gan)
    c_dim = gan.metadata.num_classes if gan is not None else c_dim
    key = {"kind": "samples", "generator_sha256": fingerprint, **sample_plan(num, seed, c_dim, class_idx),
           **extractor.cache_key()}  # fmt: skip
    path, hit = _cached(key, "samples") if use_cache else (None, None)
    if hit is not None:
        return hit
    gan = gan if gan is not None else loader()
    gan = gan.to(extractor.device)
    features = extractor.extract(_sample_batches(gan, num, seed, batch_size, class_idx), total=num,
                                 description=description, progress=progress)  # fmt: skip
    feature_set = FeatureSet(features, key, origin="computed", path=path)
    if path is not None:
        _write_cache(path, feature_set)
    return feature_set
