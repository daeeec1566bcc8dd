"""Choosing the source checkpoint for a target dataset: ``ganzoo rank --target DIR``.

Grigoryev et al. (ICLR 2022) find that the source checkpoint mostly decides the coverage
(recall) of the finetuned GAN, and that a distance between the target images and samples of
each candidate generator predicts the best source. In their "generated source" regime FID
failed on 1 of 12 targets, recall and KID on 3, precision on 7 (Table 4), so FID is the default
sort key; all proxies are always reported.

For each candidate: ``num_gen`` seeded samples (truncation 1), their features, and FID, KID,
precision, recall (k=3), density and coverage (k=5) against the target's features. Features come
from, in order: the local feature cache; precomputed sample features published in the entry's
Hub repo (``features/EXTRACTOR.safetensors``, when the extractor, N and seed match); sampling
locally (then cached). The target's features, FID statistics and k-NN radii are cached by the
dataset's content hash, so a second ranking of the same target costs a hash and file reads.

The "real" regime compares the target with features of the candidate's *source dataset*,
published as ``features/EXTRACTOR-real.safetensors`` in its checkpoint directory or Hub repo
(:func:`write_real_features`, ``scripts/publish_zoo.py --real-data``). Candidates without them,
or whose file was made by another extractor (other weights: e.g. random-weight test features
against pretrained ones), are listed last with a note and no values: never sampled instead,
since generated samples would answer a different question.

Both files record what made them (the extractor's name, input size and weights sha256 or
``random:seedN``; the generator sha256 and sample plan, or the dataset's content hash), and a file
is used only when that record equals the current ranking's, so features of different extractors
are never mixed.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import huggingface_hub

from ganzoo import rank_report
from ganzoo.rank_report import candidate_notes, render_table, write_plot  # noqa: F401 - shown there, re-exported
from ganzoo._io import atomic_write_text, check_output
from ganzoo.architectures import get_architecture
from ganzoo.data import ImageDataset, require_count
from ganzoo.errors import GanzooError
from ganzoo.hub import (converted_dir, hub_cache_dir, hub_endpoint, hub_local_only, hub_offline, hub_unreachable,
                        start_hub_check)  # fmt: skip
from ganzoo.metrics import cache as feature_cache
from ganzoo.metrics.evaluate import Candidate, resolve_candidate
from ganzoo.metrics.features import FeatureExtractor, check_extractor_name, get_extractor
from ganzoo.metrics.manifold import manifold_metrics
from ganzoo.metrics.scores import fid_from_stats, kid
from ganzoo.registry import get_entry, list_models

__all__ = ["METRICS", "RankResult", "RankedCandidate", "rank", "real_features_name", "sample_features_name",
           "write_real_features", "write_report", "write_sample_features"]

# metric -> True when higher is better
METRICS = rank_report.HIGHER_IS_BETTER  # the proxies, and whether higher is better
REGIMES = ("generated", "real")
K_PR = 3
K_DC = 5
FEW_SHOT = 1000  # targets smaller than this are "few-shot" for the recipe hint
DEFAULT_NUM_GEN = 1000  # samples per candidate; published sample features are made with this N
FEATURES_DIR = "features"  # in a checkpoint directory or Hub repo


@dataclass
class RankedCandidate:
    """One candidate's proxy metrics against the target.

    ``None`` values mean "not computed" (e.g. no published source-dataset features in the real
    regime, or a target too small for density/coverage).
    """

    name: str
    fid: float | None = None
    kid: float | None = None
    precision: float | None = None
    recall: float | None = None
    density: float | None = None
    coverage: float | None = None
    resolution: int | None = None
    num_samples: int | None = None
    features_from: str = ""  # "cache", "published" (Hub repo / checkpoint dir), "generated", "published-real"
    notes: list[str] = field(default_factory=list)

    def value(self, metric: str) -> float | None:
        return getattr(self, metric)


@dataclass
class RankResult:
    """The ranking, best first, and how it was made."""

    target: str
    num_target: int
    target_resolution: int
    metric: str
    regime: str
    feature_extractor: str
    num_gen: int
    seed: int
    candidates: list[RankedCandidate]
    recommended: str | None
    recipe_hint: str
    notes: list[str] = field(default_factory=list)
    #: ``"low"`` when the ranking says little (:attr:`caveats` say why), else ``"ok"``.
    confidence: str = "ok"
    #: Why the ranking says little: features that cannot judge the images, every candidate far
    #: from the target, only the toy starter models ranked.
    caveats: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-able (for ``--json``); NaN never appears (None instead)."""
        return asdict(self)


def _sort_key(metric: str):
    higher = METRICS[metric]

    def key(candidate: RankedCandidate):
        value = candidate.value(metric)
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return (missing, 0.0 if missing else (-value if higher else value), candidate.name)

    return key


def _recipe_hint(best: str | None, num_target: int, target: str, architecture: str | None) -> str:
    if best is None:
        return "no candidate could be scored"
    recipes = get_architecture(architecture).recipes
    if not recipes:
        return f"{architecture} networks cannot be finetuned by this version of ganzoo: sample or export {best}"
    if num_target < FEW_SHOT and {"adafm", "freezed"} <= set(recipes):
        return (f"few-shot target ({num_target} images): ganzoo finetune {best} --data {target} --recipe adafm "
                "(or --recipe freezed), with ADA")  # fmt: skip
    return f"ganzoo finetune {best} --data {target} --recipe full, with ADA"


def _default_candidates(channels: int, notes: list[str] | None = None) -> list[str]:
    """Registry entries with ``channels``-channel images; offline (``HF_HUB_OFFLINE=1``) only
    those already on this machine (bundled, converted or in the Hub cache), with one note; the
    same when the Hub endpoint does not answer (``ganzoo.hub.hub_unreachable``, asked once)."""
    why = "HF_HUB_OFFLINE=1" if hub_offline() else (f"{hub_endpoint()} unreachable" if hub_unreachable() else None)
    offline = why is not None
    names, skipped = [], 0
    for name in list_models():
        entry = get_entry(name)
        entry_channels = int((entry.generator or {}).get("img_channels", 3))
        if entry_channels != channels:
            continue
        if offline and not _on_this_machine(entry):
            skipped += 1
            continue
        names.append(name)
    if skipped and notes is not None:
        notes.append(f"offline ({why}): {skipped} registry entries not on this machine were left out "
                     "(`ganzoo pull NAME` them when online, or name them with --candidates)")  # fmt: skip
    return names


def _on_this_machine(entry) -> bool:
    """Whether a registry entry loads without network: bundled, converted, or in the Hub cache."""
    if entry.bundled or (converted_dir(entry.name) / "config.json").is_file():
        return True
    cached = huggingface_hub.try_to_load_from_cache(entry.hub.repo, "config.json", cache_dir=str(hub_cache_dir()),
                                                    revision=entry.hub.revision)  # fmt: skip
    return isinstance(cached, str)


def _expand_candidates(candidates: str | Iterable[str] | None, channels: int, notes: list[str] | None = None) -> list[str]:
    if candidates is None or candidates == "all":
        names = _default_candidates(channels, notes)
    else:
        items = [candidates] if isinstance(candidates, (str, os.PathLike)) else list(candidates)
        names = []
        for item in items:
            for part in str(item).split(","):
                part = part.strip()
                if part == "all":
                    names.extend(_default_candidates(channels, notes))
                elif part:
                    names.append(part)
    names = list(dict.fromkeys(names))
    if not names:
        offline = " on this machine (offline)" if notes else ""
        raise GanzooError(f"rank: no candidates (no registry entry{offline} has {channels}-channel images)")
    return names


def sample_features_name(feature_extractor: str) -> str:
    """Where a checkpoint directory or Hub repo keeps precomputed features of its samples.

    Args:
        feature_extractor: the extractor name, e.g. ``inception-fid``.

    Returns:
        The path inside the directory/repo: ``features/EXTRACTOR.safetensors``.
    """
    return f"{FEATURES_DIR}/{feature_extractor}.safetensors"


def real_features_name(feature_extractor: str) -> str:
    """Where a checkpoint directory or Hub repo keeps features of its source dataset ("real" regime).

    Args:
        feature_extractor: the extractor name, e.g. ``inception-fid``.

    Returns:
        The path inside the directory/repo: ``features/EXTRACTOR-real.safetensors``.
    """
    return f"{FEATURES_DIR}/{feature_extractor}-real.safetensors"


def _hub_feature_file(repo_id: str, filename: str, revision: str | None) -> Path | None:
    """A file from a candidate's Hub repo, or None when absent or unreachable (never raises)."""
    try:
        return Path(huggingface_hub.hf_hub_download(repo_id, filename, revision=revision, cache_dir=str(hub_cache_dir()),
                                                    endpoint=hub_endpoint(), local_files_only=hub_local_only(),
                                                    library_name="ganzoo"))  # fmt: skip
    except Exception:  # noqa: BLE001 - absent features are normal: sample locally instead
        return None


def _published(candidate: Candidate, filename: str) -> feature_cache.FeatureSet | None:
    if candidate.directory is not None and (candidate.directory / filename).is_file():
        path: Path | None = candidate.directory / filename
    elif candidate.repo_id:
        # The registry's revision, the one the candidate's config.json (its fingerprint) came from.
        path = _hub_feature_file(candidate.repo_id, filename, candidate.entry.hub.revision if candidate.entry else None)
    else:
        path = None
    if path is None:
        return None
    try:
        return feature_cache.read_feature_file(path, origin="hub")
    except GanzooError:
        return None


def _published_samples(candidate: Candidate, extractor: FeatureExtractor, num_gen: int,
                       seed: int) -> feature_cache.FeatureSet | None:  # fmt: skip
    published = _published(candidate, sample_features_name(extractor.name))
    if published is None:
        return None
    expected = {"kind": "samples", "generator_sha256": candidate.fingerprint,
                **feature_cache.sample_plan(num_gen, seed, candidate.c_dim), **extractor.cache_key()}  # fmt: skip
    return published if published.key == expected and len(published) == num_gen else None


def _published_real(candidate: Candidate, extractor: FeatureExtractor) -> tuple[feature_cache.FeatureSet | None, str]:
    """The candidate's published source-dataset features for this extractor, or None and why not."""
    name = real_features_name(extractor.name)
    published = _published(candidate, name)
    if published is None:
        return None, f"no published source-dataset features ({name}): not scored"
    made_by = {key: published.key.get(key) for key in extractor.cache_key()}
    if published.key.get("kind") != "dataset" or made_by != extractor.cache_key():
        return None, f"{name} was made by another extractor (weights {made_by.get('weights')}): not scored"
    return published, ""


def write_sample_features(src: Any, out: str | os.PathLike, feature_extractor: str = "inception-fid",
                          num_gen: int = DEFAULT_NUM_GEN, seed: int = 0, device: str = "cpu", progress: bool = True,
                          allow_random_weights: bool = False) -> Path:  # fmt: skip
    """Writes ``features/EXTRACTOR.safetensors`` for a checkpoint, for publishing in its Hub repo.

    ``rank`` uses such a file instead of sampling when its extractor (name, input size, weights
    sha256), N, seed and generator sha256 match. ``scripts/publish_zoo.py --features`` calls this.

    Args:
        src: a GAN, checkpoint directory, registry name or Hub id.
        out: the file to write (conventionally ``features/<extractor>.safetensors``).
        feature_extractor: extractor name (pretrained weights only).
        num_gen: number of samples (rank's default N, so that a default ranking uses the file).
        seed: first seed.
        device: torch device.
        progress: show progress bars.
        allow_random_weights: random-weight extractor (tests only; its key says so, so such
            a file is only ever used by rankings with the same random extractor).

    Returns:
        The written path.
    """
    extractor = get_extractor(feature_extractor, device=device, allow_random_weights=allow_random_weights, progress=progress)
    candidate = resolve_candidate(src, progress=progress)
    feature_set = feature_cache.sample_features(None, extractor, num_gen, seed, fingerprint=candidate.fingerprint,
                                                c_dim=candidate.c_dim, loader=candidate.load,
                                                description=f"sampling {candidate.label}", progress=progress)  # fmt: skip
    return feature_cache.write_feature_file(out, feature_set)


def write_real_features(data: str | os.PathLike, out: str | os.PathLike, feature_extractor: str = "inception-fid",
                        resolution: int | None = None, device: str = "cpu", progress: bool = True,
                        allow_random_weights: bool = False, strict: bool = False) -> Path:  # fmt: skip
    """Writes ``features/EXTRACTOR-real.safetensors``: features of a checkpoint's source dataset.

    ``rank --regime real`` compares a target with these instead of with samples. The file records
    the dataset's content hash and preprocessing and the extractor (name, input size, weights), not
    where the images were read from. ``scripts/publish_zoo.py --real-data`` calls this.

    Args:
        data: the source dataset (folder or zip).
        out: the file to write (conventionally ``features/<extractor>-real.safetensors``).
        feature_extractor: extractor name (pretrained weights only).
        resolution: the resolution the images are center-cropped and resized to first (the
            model's; default: the most common center-crop side of its images).
        device: torch device.
        progress: show progress bars.
        allow_random_weights: random-weight extractor (tests only; recorded in the file).
        strict: unreadable images are an error instead of a warning.

    Returns:
        The written path.

    Raises:
        DatasetError: the dataset is empty or has fewer than 4 readable images.
    """
    dataset = ImageDataset(data, resolution=resolution, channels=3, strict=strict)
    extractor = get_extractor(feature_extractor, device=device, allow_random_weights=allow_random_weights, progress=progress)
    feature_set = feature_cache.dataset_features(dataset, extractor, progress=progress)
    require_count(dataset.path, len(feature_set), K_PR + 1, f"source-dataset features (precision/recall with k={K_PR})")
    return feature_cache.write_feature_file(out, feature_cache.FeatureSet(feature_set.features, feature_set.key,
                                                                          skipped=feature_set.skipped))  # fmt: skip


def _target_channels(dataset) -> int:
    """1 when every readable image of the target is grayscale, else 3 (for choosing candidates):
    the whole set's headers decide, not its first file; any colour image makes it an RGB target
    (its grayscale images are repeated to RGB, which :meth:`ImageDataset.notes` says)."""
    summary = dataset.summary()
    return 1 if summary.grayscale and not summary.colour else 3


def _asks_for_all(candidates: str | Iterable[str] | None) -> bool:
    """Whether the candidates are (or include) the default selection: None or ``all``."""
    if candidates is None:
        return True
    items = [candidates] if isinstance(candidates, (str, os.PathLike)) else list(candidates)
    return any(part.strip() == "all" for item in items for part in str(item).split(","))


def rank(
    target: str | os.PathLike,
    candidates: str | Iterable[str] | None = None,
    metric: str = "fid",
    regime: str = "generated",
    num_gen: int = DEFAULT_NUM_GEN,
    feature_extractor: str = "inception-fid",
    seed: int = 0,
    resolution: int | None = None,
    device: str = "cpu",
    allow_random_weights: bool = False,
    strict: bool = False,
    progress: bool = True,
    json_out: str | os.PathLike | None = None,
    plot_out: str | os.PathLike | None = None,
    batch_size: int = 16,
    report_out: str | os.PathLike | None = None,
) -> RankResult:
    """Ranks candidate source checkpoints for finetuning on a target dataset.

    Args:
        target: the target images (folder or zip).
        candidates: registry names, Hub repo ids, checkpoint directories or foreign files (a
            list, or comma-separated), or ``"all"``/None: every registry entry whose images
            have the target's channel count (1 only when every target image is grayscale; a
            grayscale target with no 1-channel entry ranks the RGB entries, with a note).
        metric: sort key: ``fid`` (default, the most reliable proxy in the paper), ``recall``,
            ``kid`` or ``precision``. All are computed and reported.
        regime: ``generated`` (candidate samples) or ``real`` (published source-dataset
            features; candidates without them are not scored, with a note).
        num_gen: samples per candidate (``generated`` regime).
        feature_extractor: ``inception-fid`` (default), ``vgg16-pr`` or ``timm:NAME``.
        seed: first sample seed (samples use seeds ``seed .. seed+num_gen-1``).
        resolution: target resolution (default: the most common center-crop side of its images); the extractor
            resizes target and samples to its own input size.
        device: torch device.
        allow_random_weights: random-weight extractor (testing only; warns).
        strict: unreadable target files are an error instead of a warning.
        progress: progress bars.
        json_out: also write the result as JSON here.
        plot_out: also write a bar plot (PNG) here.
        batch_size: generator batch size.
        report_out: also write a self-contained HTML page here (target thumbnails, each
            candidate's first samples beside its scores, the recommendation):
            :func:`ganzoo.rank_report.write_report`.

    Returns:
        The :class:`RankResult`, candidates sorted best first.

    Raises:
        DatasetError: the target is empty or has fewer than 4 readable images.
        GanzooError: bad options or candidates.
    """
    start_hub_check()  # whether the Hub answers (asked once per process) comes while torch loads
    import torch  # noqa: F401  (imported here, after start_hub_check, so that the Hub is asked while it loads)

    metric = _check_options(metric, regime, num_gen, feature_extractor, json_out, plot_out, report_out)
    dataset = ImageDataset(target, resolution=resolution, channels=3, strict=strict)
    names, selection_notes = _choose_candidates(dataset, candidates)
    extractor = get_extractor(feature_extractor, device=device, allow_random_weights=allow_random_weights, progress=progress)
    reference = _target_features(dataset, extractor, progress)
    # What the target holds and what reading did, how the candidates were chosen, what the settings mean.
    notes = dataset.notes() + selection_notes + _setting_notes(reference, regime, allow_random_weights)
    plan = _Plan(extractor, regime, num_gen, seed, device, batch_size, progress)
    rows, resolved, failures = _score_candidates(names, reference, plan)
    if failures and len(failures) == len(names):
        raise failures[0]  # nothing could be ranked: the first reason is the answer
    result = _ranked(rows, resolved, metric, str(target), reference, plan, notes)
    _write_outputs(result, json_out, plot_out, report_out, resolved, device)
    return result


def _check_options(metric: str, regime: str, num_gen: int, feature_extractor: str, json_out: Any, plot_out: Any,
                   report_out: Any) -> str:  # fmt: skip
    """The sort metric (lowercase), once every option is valid and every output file can be
    written: a ranking whose --json, --plot or --report cannot be written is not computed."""
    metric = metric.lower()
    if metric not in METRICS:
        raise GanzooError(f"rank: unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    if regime not in REGIMES:
        raise GanzooError(f"rank: unknown regime {regime!r}; use generated or real")
    if num_gen < K_PR + 1:
        raise GanzooError(f"rank: --num-gen must be at least {K_PR + 1} for precision/recall with k={K_PR}")
    feature_cache.check_num_samples(num_gen)  # the range now; the memory once the extractor's size is known
    if json_out is not None:
        check_output(json_out, suffixes=(".json",), overwrite=True)
    if plot_out is not None:
        check_output(plot_out, suffixes=(".png",), overwrite=True)
    if report_out is not None:
        check_output(report_out, suffixes=rank_report.REPORT_SUFFIXES, overwrite=True)
    check_extractor_name(feature_extractor)  # a typo is its own error, before any reading
    return metric


def _choose_candidates(dataset: ImageDataset, candidates: str | Iterable[str] | None) -> tuple[list[str], list[str]]:
    """The names of the candidates for the target's channel count, and notes on how they were chosen."""
    selection_notes: list[str] = []
    channels = _target_channels(dataset)
    # No registry entry makes grayscale images: a grayscale target ranks the RGB ones rather than none.
    rgb_instead = channels == 1 and _asks_for_all(candidates) and not _default_candidates(1)
    names = _expand_candidates(candidates, 3 if rgb_instead else channels, selection_notes)
    if rgb_instead:
        selection_notes.append("the target is grayscale and no registry entry has 1-channel images: ranking the RGB "
                               "entries (the target repeated to RGB; finetuning one trains an RGB model)")  # fmt: skip
    return names, selection_notes


@dataclass
class _Target:
    """The target's features and the statistics every candidate is compared with."""

    dataset: ImageDataset
    feature_set: feature_cache.FeatureSet
    stats: Any  # FID statistics
    radii: Any  # k-NN radii: k=K_PR, and k=K_DC with_dc
    with_dc: bool  # enough images for density/coverage


def _target_features(dataset: ImageDataset, extractor: FeatureExtractor, progress: bool) -> _Target:
    """The target's features (cached by its content hash), FID statistics and k-NN radii."""
    target_set = feature_cache.dataset_features(dataset, extractor, progress=progress)
    require_count(dataset.path, len(target_set), K_PR + 1, f"rank (precision/recall with k={K_PR})")
    with_dc = len(target_set) >= K_DC + 1
    stats = target_set.stats()
    return _Target(dataset, target_set, stats, target_set.radii((K_PR, K_DC) if with_dc else (K_PR,)), with_dc)


def _setting_notes(target: _Target, regime: str, allow_random_weights: bool) -> list[str]:
    """Notes on what the ranking's settings mean for its values."""
    notes = []
    if allow_random_weights:
        notes.append("random-weight feature extractor: the values are meaningless (testing only)")
    if regime == "real":
        notes.append("real regime: each candidate's published source-dataset features instead of samples (--num-gen does not apply)")
    if not target.with_dc:
        notes.append(f"target has {len(target.feature_set)} images: density/coverage (k={K_DC}) need {K_DC + 1}, not computed")
    return notes


@dataclass(frozen=True)
class _Plan:
    """How every candidate is scored: the extractor, the regime and the samples."""

    extractor: FeatureExtractor
    regime: str
    num_gen: int
    seed: int
    device: str
    batch_size: int
    progress: bool


def _score_candidates(names: list[str], target: _Target,
                      plan: _Plan) -> tuple[list[RankedCandidate], dict[str, Candidate], list[GanzooError]]:  # fmt: skip
    """A row per candidate (an unscored one with a note saying why), the resolved candidates by
    label (the report samples them), and the errors that left candidates unscored."""
    rows: list[RankedCandidate] = []
    resolved: dict[str, Candidate] = {}
    failures: list[GanzooError] = []
    for name in names:
        try:
            candidate = resolve_candidate(name, progress=plan.progress)
        except GanzooError as exc:
            # One unreachable or broken candidate must not sink a ranking of a whole zoo.
            failures.append(exc)
            rows.append(RankedCandidate(name=str(name), notes=[f"not scored: {exc}"]))
            continue
        resolved[candidate.label] = candidate
        rows.append(_scored_row(candidate, target, plan, failures))
    return rows, resolved, failures


def _scored_row(candidate: Candidate, target: _Target, plan: _Plan, failures: list[GanzooError]) -> RankedCandidate:
    """The candidate's proxy metrics against the target, or notes saying why it has none."""
    row = RankedCandidate(name=candidate.label, resolution=candidate.resolution)
    extractor = plan.extractor
    if candidate.resolution != target.dataset.resolution:
        row.notes.append(f"{candidate.resolution}px vs target {target.dataset.resolution}px: both resized to "
                         f"{extractor.input_size}px by {extractor.name}")  # fmt: skip
    gen_set = _candidate_features(candidate, row, plan, failures)
    if gen_set is None:
        return row
    row.num_samples = len(gen_set)
    if len(gen_set) < K_PR + 1:
        row.notes.append(f"only {len(gen_set)} samples: not scored")
        return row
    real = target.feature_set.features
    row.fid = fid_from_stats(target.stats, gen_set.stats(), real, gen_set.features)
    row.kid = kid(real, gen_set.features, num_subsets=100, subset_size=1000, seed=plan.seed)
    scores = manifold_metrics(real, gen_set.features, k_pr=K_PR, k_dc=K_DC if target.with_dc else None,
                              device=plan.device, real_radii=target.radii)  # fmt: skip
    for key, value in scores.items():
        setattr(row, key, value)
    return row


def _candidate_features(candidate: Candidate, row: RankedCandidate, plan: _Plan,
                        failures: list[GanzooError]) -> feature_cache.FeatureSet | None:  # fmt: skip
    """The features the candidate is scored by, with where they came from in ``row.features_from``;
    None, with a note in ``row``, when it has none (a sampling error also goes to ``failures``)."""
    if plan.regime == "real":
        gen_set, why_not = _published_real(candidate, plan.extractor)
        if gen_set is None:
            row.notes.append(why_not)
            return None
        row.features_from = "published-real"
        return gen_set
    gen_set = _published_samples(candidate, plan.extractor, plan.num_gen, plan.seed)
    if gen_set is not None:
        row.features_from = "published"
        return gen_set
    try:
        gen_set = feature_cache.sample_features(None, plan.extractor, plan.num_gen, plan.seed,
                                                fingerprint=candidate.fingerprint, c_dim=candidate.c_dim,
                                                loader=candidate.load, description=f"sampling {candidate.label}",
                                                progress=plan.progress, batch_size=plan.batch_size)  # fmt: skip
    except GanzooError as exc:
        failures.append(exc)
        row.notes.append(f"not scored: {exc}")
        return None
    row.features_from = "cache" if gen_set.origin == "cache" else "generated"
    return gen_set


def _ranked(rows: list[RankedCandidate], resolved: dict[str, Candidate], metric: str, target: str,
            reference: _Target, plan: _Plan, notes: list[str]) -> RankResult:  # fmt: skip
    """The result: the rows sorted best first, the recommendation and its recipe hint (softened,
    with the caveats, when the ranking says little)."""
    rows.sort(key=_sort_key(metric))
    scored = [r for r in rows if r.value(metric) is not None]
    best = scored[0].name if scored else None
    num_target = len(reference.feature_set)
    hint = _recipe_hint(best, num_target, target, resolved[best].architecture if best else None)
    caveats = _caveats(plan, scored, resolved)
    if best is not None and caveats:
        hint = f"low confidence (see the caveats): if you try {best} anyway, {hint}"
    return RankResult(
        target=target, num_target=num_target, target_resolution=reference.dataset.resolution, metric=metric,
        regime=plan.regime, feature_extractor=plan.extractor.name, num_gen=plan.num_gen, seed=plan.seed,
        candidates=rows, recommended=best, recipe_hint=hint, notes=notes, confidence="low" if caveats else "ok",
        caveats=caveats,
    )  # fmt: skip


#: Below this recall for every candidate, none of them makes images like the target's.
LOW_RECALL = 0.1


def _caveats(plan: _Plan, scored: list[RankedCandidate], resolved: dict[str, Candidate]) -> list[str]:
    """Why this ranking says little about which source to finetune, if it does."""
    out = []
    name = plan.extractor.name
    if plan.extractor.random_weights:
        out.append(f"{name} has random weights: the scores are meaningless (testing only)")
    elif name.split("@")[0] == "pixels":
        out.append("pixel features compare colours and layout, not what the images show: they cannot tell which "
                   "source knows the target's content (use inception-fid or a timm: extractor)")  # fmt: skip
    recalls = [r.recall for r in scored if r.recall is not None]
    if recalls and max(recalls) < LOW_RECALL:
        out.append(f"every candidate's recall is below {LOW_RECALL:g} (best {max(recalls):.3f}): none makes images like "
                   "the target's; the first is only the least far")  # fmt: skip
    entries = [resolved[r.name].entry for r in scored]
    if scored and all(entry is not None and entry.bundled for entry in entries):
        out.append("only the bundled starter models were ranked (32x32 toy domains): they say little about other "
                   "images; rank registry models online, or name them with --candidates")  # fmt: skip
    return out


def _write_outputs(result: RankResult, json_out: Any, plot_out: Any, report_out: Any, candidates: dict[str, Candidate],
                   device: str) -> None:  # fmt: skip
    """Writes the files asked for (``--json``, ``--plot``, ``--report``; each was checked before the work)."""
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
    if plot_out is not None:
        write_plot(result, plot_out)
    if report_out is not None:
        rank_report.write_report(result, report_out, candidates=candidates, device=device)


def write_report(result: RankResult, path: str | os.PathLike, **kwargs: Any) -> Path:
    """The ranking as one self-contained HTML page (``rank --report``); see
    :func:`ganzoo.rank_report.write_report` for the options."""
    return rank_report.write_report(result, path, **kwargs)
