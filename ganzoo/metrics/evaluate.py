"""Metrics of a GAN against a dataset: what ``ganzoo metrics SRC --data DIR`` runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ganzoo.data import ImageDataset, require_count
from ganzoo.errors import GanzooError
from ganzoo.hub import start_hub_check
from ganzoo.metrics import cache as feature_cache
from ganzoo.metrics.features import FeatureExtractor, check_extractor_name, get_extractor
from ganzoo.metrics.manifold import manifold_metrics
from ganzoo.metrics.scores import fid_from_stats, kid

if TYPE_CHECKING:  # pragma: no cover
    from ganzoo.checkpoint import GAN

__all__ = ["DEFAULT_EXTRACTORS", "METRIC_NAMES", "evaluate", "parse_metric_names", "resolve_candidate"]

METRIC_NAMES = ("fid", "kid", "pr", "dc")
# Each metric's standard feature space: FID/KID on Inception pool features, precision/recall
# (and density/coverage, which Naeem et al. evaluate in the same space) on VGG16 fc2.
DEFAULT_EXTRACTORS = {"fid": "inception-fid", "kid": "inception-fid", "pr": "vgg16-pr", "dc": "vgg16-pr"}


def parse_metric_names(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """``"fid,kid"`` or ``["fid", "pr"]`` -> validated names in canonical order."""
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    unknown = [m for m in names if m not in METRIC_NAMES]
    if unknown or not names:
        raise GanzooError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose from {','.join(METRIC_NAMES)}")
    return tuple(m for m in METRIC_NAMES if m in names)


class Candidate:
    """A generator to sample from, identified without loading it when possible.

    Attributes:
        label: how it is shown (registry name, repo id, directory or ``<GAN>``).
        fingerprint: sha256 of its EMA generator weights.
        c_dim: number of classes.
        resolution: image size.
        channels: image channels.
        entry: the registry entry, when it is one.
        repo_id: its Hub repo, when it has one.
        directory: its checkpoint directory, when on disk.
        architecture: the name of its architecture plug-in.
    """

    def __init__(self, label: str, fingerprint: str, c_dim: int, resolution: int, channels: int,
                 load: Any, *, architecture: str, entry: Any = None, repo_id: str | None = None,
                 directory: Path | None = None):  # fmt: skip
        self.label = label
        self.architecture = architecture
        self.fingerprint = fingerprint
        self.c_dim = c_dim
        self.resolution = resolution
        self.channels = channels
        self.entry = entry
        self.repo_id = repo_id
        self.directory = directory
        self._load = load

    def load(self, device: Any = "cpu") -> "GAN":
        return self._load(device)


def _remote_candidate(text: str, progress: bool) -> Candidate | None:
    """A registry name or Hub id fingerprinted from its Hub ``config.json`` alone (weights are
    pulled only when samples must be generated), or None when that file cannot be had."""
    from ganzoo.checkpoint import GAN, config_metadata
    from ganzoo.hub import hub_cache_dir, hub_endpoint, hub_local_only, pull_checkpoint, resolve

    entry, repo_id = resolve(text)
    try:
        import json

        from huggingface_hub import hf_hub_download

        config_path = hf_hub_download(repo_id, "config.json", revision=entry.hub.revision if entry else None,
                                      cache_dir=str(hub_cache_dir()), endpoint=hub_endpoint(),
                                      local_files_only=hub_local_only(), library_name="ganzoo")  # fmt: skip
        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
        digest = config["files"]["generator.safetensors"]["sha256"]
        meta = config_metadata(config)
    except Exception:  # noqa: BLE001 - no Hub copy: the caller pulls (which may use the upstream fallback)
        return None
    if not isinstance(digest, str):
        return None

    def load_gan(device: Any) -> "GAN":
        # The pull verifies every file against the same config.json the fingerprint came from.
        return GAN.load(pull_checkpoint(text, progress=progress).path, device=str(device), verify=False, missing_ok=True)

    return Candidate(entry.name if entry else text, digest, meta.num_classes, meta.resolution, meta.channels, load_gan,
                     entry=entry, repo_id=repo_id, architecture=config["architecture"])  # fmt: skip


def resolve_candidate(src: "str | os.PathLike | GAN", progress: bool = True) -> Candidate:
    """Turns a GAN, checkpoint directory, foreign file, registry name or Hub id into a :class:`Candidate`.

    Checkpoint directories (also pulled registry/Hub checkpoints) are fingerprinted from their
    verified ``config.json`` without building the networks; registry names and Hub ids from the
    repo's ``config.json`` alone, so published or cached sample features are used without
    downloading or loading any weights.
    """
    from ganzoo.checkpoint import GAN, config_metadata, is_checkpoint_dir, read_config

    if isinstance(src, GAN):
        meta = src.metadata
        return Candidate("<GAN>", feature_cache.gan_fingerprint(src), meta.num_classes, meta.resolution, meta.channels,
                         lambda device: src.to(device), architecture=src.architecture.name)  # fmt: skip
    path = Path(src)
    entry = repo_id = None
    if not path.exists():
        from ganzoo.api import load
        from ganzoo.hub import converted_dir, pull_checkpoint, resolve

        text = str(src)
        if text.startswith((".", "/", "~")) or path.suffix:
            load(text)  # raises the loader's one-line error for a missing path
        entry, repo_id = resolve(text)
        if entry is not None and entry.bundled:
            repo_id = None  # in the package: nothing to ask the Hub
        converted = converted_dir(entry.name) if entry is not None else None
        if (entry is None or not entry.bundled) and (converted is None or not is_checkpoint_dir(converted)):
            remote = _remote_candidate(text, progress)
            if remote is not None:
                return remote
        result = pull_checkpoint(text, progress=progress)
        path, entry, repo_id = result.path, result.entry, result.repo_id or repo_id
    if is_checkpoint_dir(path):
        config = read_config(path)
        meta = config_metadata(config)
        directory = path
        return Candidate(str(entry.name if entry else src), feature_cache.checkpoint_fingerprint(path), meta.num_classes,
                         meta.resolution, meta.channels,
                         lambda device: GAN.load(directory, device=device), entry=entry, repo_id=repo_id,
                         directory=directory, architecture=config["architecture"])  # fmt: skip
    from ganzoo.api import load

    gan = load(path)
    meta = gan.metadata
    return Candidate(str(src), feature_cache.gan_fingerprint(gan), meta.num_classes, meta.resolution, meta.channels,
                     lambda device: gan.to(device), architecture=gan.architecture.name)  # fmt: skip


def evaluate(
    src: "str | os.PathLike | GAN",
    data: str | os.PathLike,
    metrics: str | Iterable[str] = METRIC_NAMES,
    num_gen: int = 50_000,
    feature_extractor: str | None = None,
    seed: int = 0,
    resolution: int | None = None,
    device: str = "cpu",
    allow_random_weights: bool = False,
    strict: bool = False,
    progress: bool = True,
    k_pr: int = 3,
    k_dc: int = 5,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    class_idx: int | str | None = None,
) -> dict:
    """Compares a GAN's samples with a dataset: FID, KID, precision/recall, density/coverage.

    Features of the dataset and of the samples are cached (see :mod:`ganzoo.metrics.cache`), so
    asking again, or for another metric in the same feature space, costs no network pass.

    Args:
        src: a GAN, checkpoint directory, foreign checkpoint file, registry name or Hub repo id.
        data: the real images (folder or zip, see :class:`ganzoo.data.ImageDataset`).
        metrics: any of ``fid``, ``kid``, ``pr``, ``dc`` (list or comma-separated).
        num_gen: generated samples (the StyleGAN2-ADA ``fid50k_full`` protocol uses 50k
            against the full dataset).
        feature_extractor: one extractor for every metric; default: ``inception-fid`` for
            FID/KID and ``vgg16-pr`` for precision/recall and density/coverage.
        seed: first sample seed.
        resolution: dataset resolution (default: the most common center-crop side of its
            images); extractors resize both sets to their own input size.
        device: torch device for the generator, extractor and distances.
        allow_random_weights: random-weight extractors (testing only; warns).
        strict: unreadable dataset files are an error instead of a warning.
        progress: show progress bars.
        k_pr: k of precision/recall.
        k_dc: k of density/coverage.
        kid_subsets: KID subsets.
        kid_subset_size: KID subset size.
        class_idx: a conditional GAN's class (index or name) that every sample is of (the
            metrics of one class; None: image i of class ``i % num_classes``). Ignored for
            unconditional GANs.

    Returns:
        ``{'fid', 'kid', 'precision', 'recall', 'density', 'coverage'}`` (those asked for), plus
        ``num_real``, ``num_gen``, ``extractors`` (metric -> extractor), ``data`` (the data's
        path, resolution and :meth:`~ganzoo.data.ImageDataset.preparation`: whether and from
        which sizes images were resampled, how many were converted) and ``notes``.
    """
    start_hub_check()  # whether the Hub answers (asked once per process) comes while torch loads
    import torch  # noqa: F401  (imported here, after start_hub_check, so that the Hub is asked while it loads)

    names = parse_metric_names(metrics)
    feature_cache.check_num_samples(num_gen)  # the range now; the memory once the extractor's size is known
    extractors = _extractor_names(names, feature_extractor)
    dataset = ImageDataset(data, resolution=resolution, channels=3, strict=strict)
    candidate = resolve_candidate(src, progress=progress)
    if class_idx is not None and candidate.c_dim:
        class_idx = candidate.load().class_index(class_idx)  # a name, or an index out of range: one line
    out = _record(data, dataset, candidate, num_gen, extractors)
    features: dict[str, tuple] = {}
    for extractor_name in dict.fromkeys(extractors.values()):
        extractor = get_extractor(extractor_name, device=device, allow_random_weights=allow_random_weights, progress=progress)
        features[extractor_name] = _real_and_generated(dataset, candidate, extractor, num_gen, seed, class_idx, progress)
        out["num_real"] = len(features[extractor_name][0])
    for metric in names:
        real, gen = features[extractors[metric]]
        out.update(_metric_values(metric, real, gen, dataset.path, seed=seed, device=device, k_pr=k_pr, k_dc=k_dc,
                                  kid_subsets=kid_subsets, kid_subset_size=kid_subset_size))  # fmt: skip
    if allow_random_weights:
        out["notes"].append("random-weight feature extractors: the values are meaningless (testing only)")
    return out


def _extractor_names(names: tuple[str, ...], feature_extractor: str | None) -> dict[str, str]:
    """Metric -> the name of its extractor, each name checked (a typo is its own error, before
    any reading or download)."""
    extractors = {m: feature_extractor or DEFAULT_EXTRACTORS[m] for m in names}
    for extractor_name in dict.fromkeys(extractors.values()):
        check_extractor_name(extractor_name)
    return extractors


def _record(data: str | os.PathLike, dataset: ImageDataset, candidate: Candidate, num_gen: int,
            extractors: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """The result before any metric: what was compared, and notes on the data and resolutions."""
    # What reading did to the data (mixed sizes or channels: one note each, with the counts).
    data_record = {"path": str(data), "resolution": dataset.resolution, **dataset.preparation()}
    out: dict[str, Any] = {"num_gen": num_gen, "extractors": extractors, "data": data_record, "notes": dataset.notes()}
    if candidate.resolution != dataset.resolution:
        out["notes"].append(f"resolutions differ (data {dataset.resolution}px, generator {candidate.resolution}px): "
                            "the extractors resize both to their input size")  # fmt: skip
    return out


def _real_and_generated(dataset: ImageDataset, candidate: Candidate, extractor: FeatureExtractor, num_gen: int,
                        seed: int, class_idx: int | None, progress: bool) -> tuple:  # fmt: skip
    """The dataset's features and those of the candidate's samples, in one extractor's space."""
    real = feature_cache.dataset_features(dataset, extractor, progress=progress)
    gen = feature_cache.sample_features(None, extractor, num_gen, seed, fingerprint=candidate.fingerprint,
                                        c_dim=candidate.c_dim, loader=candidate.load,
                                        description=f"sampling {candidate.label}", progress=progress,
                                        class_idx=class_idx if candidate.c_dim else None)  # fmt: skip
    return real, gen


def _metric_values(metric: str, real: Any, gen: Any, path: Any, *, seed: int, device: str, k_pr: int, k_dc: int,
                   kid_subsets: int, kid_subset_size: int) -> dict[str, float]:  # fmt: skip
    """One metric's values (``pr``: precision and recall; ``dc``: density and coverage), once
    the dataset has the images it needs."""
    if metric == "fid":
        require_count(path, len(real), 2, "FID")
        return {"fid": fid_from_stats(real.stats(), gen.stats(), real.features, gen.features)}
    if metric == "kid":
        require_count(path, len(real), 2, "KID")
        return {"kid": kid(real.features, gen.features, num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)}
    if metric == "pr":
        require_count(path, len(real), k_pr + 1, f"precision/recall with k={k_pr}")
        return manifold_metrics(real.features, gen.features, k_pr=k_pr, k_dc=None, device=device,
                                real_radii=real.radii((k_pr,)))  # fmt: skip
    require_count(path, len(real), k_dc + 1, f"density/coverage with k={k_dc}")
    return manifold_metrics(real.features, gen.features, k_pr=None, k_dc=k_dc, device=device,
                            real_radii=real.radii((k_dc,)))  # fmt: skip
