"""``ganzoo.finetune``: a transfer recipe + the training engine + ADA, with snapshots and resume.

A run writes its directory ``OUT`` (:mod:`ganzoo.train.rundir`: ``run.json``, ``log.jsonl``,
atomic snapshots from the start on, and in the end ``OUT`` itself as a checkpoint directory
that generate/load/push consume as is). Killing the process loses at most one snapshot
interval; ``resume=OUT`` continues from the newest snapshot exactly (:mod:`ganzoo.train.resume`:
the bytes of an uninterrupted run). A directory left before even the start was saved holds no
training: the same command starts it afresh.

The run's settings are one :class:`~ganzoo.train.options.FinetuneOptions` (or the same as
keyword arguments). They are checked before anything is loaded (:mod:`ganzoo.train.checks`); a
resumed run keeps its settings (:func:`~ganzoo.train.resume.resume_conflicts`), except those
that may change (kimg, snap, batch_gpu, metrics), which are applied and recorded in
``run.json`` under ``resumed``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import torch

from ganzoo import __version__
from ganzoo._io import atomic_write_text, check_output
from ganzoo._threads import Threads, choose_threads, use_threads
from ganzoo.architectures import metadata_of
from ganzoo.checkpoint import GAN
from ganzoo.errors import GanzooError
from ganzoo.train import checks
from ganzoo.train.dataset import TrainingImages, load_training_images
from ganzoo.train.loop import FAMILY_OPTIONS, Distributed, Trainer, TrainingOptions
from ganzoo.train.options import FinetuneOptions, default_batch
from ganzoo.train.recipes import PreparedNetworks, prepare
from ganzoo.train.resume import resume_conflicts, resume_run, source_label
from ganzoo.train.rundir import (
    RUN_FILE,
    Run,
    check_memory,
    clear_unstarted_run,
    latest_snapshot,
    run_loop,
    unstarted_run,
)

__all__ = ["FinetuneOptions", "default_batch", "finetune", "latest_snapshot", "resume_conflicts"]

#: The settings a resumed run keeps, in the order a refusal names them (then ``training``'s).
_KEPT = ("recipe", "aug", "p", "aug_preset", "batch", "seed", "lr", "gamma", "ema_kimg", "target", "mirror",
         "resolution", "freeze_d", "general_g", "general_d", "adafm_variant")  # fmt: skip


def finetune(
    source: str | os.PathLike | GAN | None = None,
    data: str | os.PathLike | torch.Tensor | None = None,
    out: str | os.PathLike | None = None,
    *,
    options: FinetuneOptions | None = None,
    resume: str | os.PathLike | None = None,
    **settings: Any,
) -> Path:
    """Adapts a pretrained GAN to new data with a transfer recipe; returns the output directory.

    Args:
        source: registry name, Hub repo id, checkpoint directory, foreign file, or a
            :class:`~ganzoo.checkpoint.GAN` (not needed with ``resume``).
        data: folder of images (or uint8 ``[N, C, H, W]`` tensor) at the source's resolution.
        out: the run directory, which also becomes the final checkpoint directory. Must not
            exist (use ``resume`` to continue a run).
        options: the run's settings (:class:`~ganzoo.train.options.FinetuneOptions`, where each
            is documented; None: its defaults).
        resume: a run directory to continue from its newest snapshot (every run has one from
            its start on); which settings it keeps and which may change: ``FinetuneOptions``.
        **settings: ``FinetuneOptions`` fields (``recipe``, ``kimg``, ``batch``, ``seed``, ...),
            and further :class:`~ganzoo.train.loop.TrainingOptions` fields (``G_ortho=1e-4``),
            filled in over ``options``.

    Returns:
        ``out``: a checkpoint directory (plus the run's snapshots and log).

    Raises:
        TypeError: a keyword that is neither a ``FinetuneOptions`` nor a ``TrainingOptions`` field.
        GanzooError: bad settings, missing data, a source without D, an existing ``out``, a
            device that is not there, metrics whose feature extractor cannot be had, sizes that
            cannot fit in memory (all of them before any training, see
            :mod:`ganzoo.train.checks`), a ``resume`` with settings that differ from the run's.
    """
    from ganzoo.train.distributed import maybe_init_distributed

    options = FinetuneOptions.of(options, settings, "finetune")
    # Everything that can be refused is refused here, before anything is loaded or trained
    # (ganzoo.train.checks); the --feature-extractor name too (check_metrics), not at a snapshot.
    device = checks.check_device(options.device)
    options.check()
    metrics = checks.check_metrics(options.metrics, options.metrics_options, data if resume is None else None)
    device = maybe_init_distributed(device)
    progress = options.progress and (options.progress_label or "finetune")  # run_loop's: False or the label
    with _threads(options.threads) as threads:
        options = replace(options, threads=threads)
        if resume is not None:
            asked = {"source": source, "out": out, **{k: getattr(options, k) for k in _KEPT}, **options.training}
            asked["mirror"] = options.mirror or None
            run = resume_run(Path(resume), options, data, asked, device, metrics, progress)
        else:
            run = _start_run(source, data, out, _with_defaults(options), device, metrics, progress)
        run_loop(run, int(round(run.trainer.options.total_kimg * 1000)), options.tick_kimg, progress, options.callback,
                 options.resume_hint)  # fmt: skip
    return run.out


@contextlib.contextmanager
def _threads(asked: Any) -> Iterator[Threads]:
    """Runs the block with ``asked`` threads (a count, a :class:`Threads`, or None: torch's
    setting as it is), restoring torch's setting afterwards; yields what the run records."""
    before = torch.get_num_threads()
    if asked is None:
        yield Threads(before, "torch's setting")
        return
    threads = asked if isinstance(asked, Threads) else choose_threads(asked)
    use_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


def _with_defaults(options: FinetuneOptions) -> FinetuneOptions:
    """``options`` with the defaults of a new run where not given (the batch: once the
    resolution is known)."""

    def given(value: Any, default: Any) -> Any:
        return default if value is None else value

    return replace(options, kimg=float(given(options.kimg, 100.0)), snap=float(given(options.snap, 50.0)),
                   recipe=given(options.recipe, "full"), aug=given(options.aug, "ada"), seed=int(given(options.seed, 0)),
                   aug_preset=given(options.aug_preset, "bgc"), target=float(given(options.target, 0.6)))  # fmt: skip


def _start_run(source: Any, data: Any, out: Any, options: FinetuneOptions, device: str, metrics: list[str],
               progress: bool | str) -> Run:  # fmt: skip
    """A new run in ``out``: checked, its networks made by the recipe, its start written (the
    first snapshot, kimg 0)."""
    out, restart = _check_new_run(source, data, out, options, metrics, progress)
    gan = _load_source(source, device)
    batch = _check_source(gan, options, device)
    # The networks first: a recipe may change the number of classes (--adafm-variant paper
    # rebuilds G's and D's class layers with one label), and the data is read for those.
    prepared = prepare(gan, options.recipe, seed=options.seed, freeze_d=options.freeze_d, general_g=options.general_g,
                       general_d=options.general_d, allow_random_d=options.allow_random_d,
                       adafm_variant=options.adafm_variant)  # fmt: skip
    meta = gan.metadata
    images = load_training_images(data, meta.resolution, meta.channels, resample=options.resolution is not None,
                                  mirror=options.mirror, c_dim=metadata_of(prepared.G_ema).num_classes,
                                  strict=options.strict)  # fmt: skip
    if metrics:
        checks.check_metric_data(metrics, int(images.describe().get("num_images", len(images))), options.metrics_options)
    opts = _training_options(gan, options, batch)
    trainer = Trainer(prepared.G, prepared.G_ema, prepared.D, images, opts, device=device)
    base_config, step = _lineage(gan, source, options.recipe, prepared, images, opts, trainer)
    if options.source_label is not None:
        step["parent"] = options.source_label
    step["notes"] = list(step["notes"]) + list(options.lineage_notes) + list(getattr(images, "notes", []))
    run_info = {
        "source": step["parent"], "recipe": options.recipe, "data": images.describe(), "options": opts.to_dict(),
        "snap_kimg": options.snap, "metrics": list(metrics), "metrics_options": dict(options.metrics_options or {}),
        "base_config": base_config, "lineage_step": step, "ganzoo_version": __version__,
        "threads": options.threads.to_dict(),
    }  # fmt: skip
    dist = Distributed()
    dist.barrier()  # every process has checked that OUT is new before rank 0 creates it
    if dist.rank == 0:
        if restart:
            clear_unstarted_run(out, progress)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / RUN_FILE, json.dumps(run_info, sort_keys=True, indent=2) + "\n")
    run = Run(out, trainer, base_config, step, options.snap, metrics, options.keep_snapshots, is_writer=dist.rank == 0,
              metrics_options=options.metrics_options)  # fmt: skip
    if run.is_writer:
        # The start, as StyleGAN2-ADA's first snapshot: a run interrupted before its first --snap
        # resumes from here (the same bytes as an uninterrupted run), nothing is ever lost.
        run.snapshot(with_metrics=False)
    dist.barrier()
    return run


def _check_new_run(source: Any, data: Any, out: Any, options: FinetuneOptions, metrics: list[str],
                   progress: bool | str) -> tuple[Path, bool]:  # fmt: skip
    """What a new run refuses before loading anything; returns ``out`` and whether it is an
    unstarted run to start again in place."""
    if source is None or data is None or out is None:
        raise GanzooError("finetune: give SOURCE, --data and --out (or --resume RUN_DIR)")
    out = Path(out)
    if options.aug == "fixed" and options.p is None:
        raise GanzooError("--aug fixed needs --p P")
    # Before the work: a missing or empty folder that takes files (one rule for every --out); a
    # run interrupted before it saved anything is started again in place.
    restart = unstarted_run(out)
    if not restart:
        check_output(out, "dir", hint=f"choose another --out, or continue it with --resume {out}")
    metrics_options = options.metrics_options or {}
    for name in checks.metric_extractors(metrics, options.metrics_options) if metrics else ():
        checks.check_extractor(name, bool(metrics_options.get("allow_random_weights")), progress=progress)
    return out, restart


def _load_source(source: Any, device: str) -> GAN:
    if isinstance(source, GAN):
        gan = source
    else:
        from ganzoo.api import load

        gan = load(source, device="cpu")
    gan.architecture.require("finetune")
    return gan


def _check_source(gan: GAN, options: FinetuneOptions, device: str) -> int:
    """Refuses settings the source cannot train with (a family's own option for another family,
    another resolution, a batch that cannot fit); returns the batch."""
    # A family's own option (--g-ortho) for a family whose objective does not read it: refused.
    family = {k: options.training[k] for k in FAMILY_OPTIONS if k in options.training}
    checks.check_family_options(gan.architecture, TrainingOptions(**family))
    res = gan.metadata.resolution
    if options.resolution is not None and int(options.resolution) != res:
        raise GanzooError(f"--resolution {options.resolution}: the source is {res}x{res}; the target resolution must match the source")
    batch = int(options.batch) if options.batch is not None else default_batch(res)
    check_memory(gan, int(options.batch_gpu or batch // checks.world_size()), device, f"the source is {res}x{res}")
    return batch


def _training_options(gan: GAN, options: FinetuneOptions, batch: int) -> TrainingOptions:
    """The loop's options: the architecture's own training settings (learning rates,
    regularization), then the user's."""
    return TrainingOptions.for_architecture(
        gan.architecture, gan.G_ema.init_kwargs, batch, options.recipe, batch_gpu=options.batch_gpu, seed=options.seed,
        total_kimg=options.kimg, aug=options.aug, aug_preset=options.aug_preset,
        aug_p=float(options.p) if options.p is not None else 0.0, ada_target=options.target,
        **options.training_overrides(),
    )  # fmt: skip


def _lineage(gan: GAN, source: Any, recipe: str, prepared: PreparedNetworks, images: TrainingImages, opts: TrainingOptions,
             trainer: Trainer) -> tuple[dict, dict]:  # fmt: skip
    """The config the outputs inherit from the source, and this run's lineage step."""
    src_config = gan.config
    base = {
        "architecture": prepared.architecture,
        "source": copy.deepcopy(src_config.get("source") or {}),
        "lineage": copy.deepcopy(src_config.get("lineage") or []),
        "license": src_config.get("license", "unknown"),
    }
    if src_config.get("class_names") and len(src_config["class_names"]) == metadata_of(prepared.G_ema).num_classes:
        base["class_names"] = list(src_config["class_names"])
    label = source_label(source)
    step: dict = {"parent": label, "recipe": recipe, "settings": dict(prepared.settings), "data": images.describe(),
                  "aug": opts.aug, "aug_preset": opts.aug_preset, "batch": opts.batch, "seed": opts.seed,
                  "r1_gamma": trainer.r1_gamma, "notes": list(prepared.notes)}  # fmt: skip
    src_source = src_config.get("source") or {}
    if isinstance(src_source, dict) and isinstance(src_source.get("registry"), str):
        step["registry"] = src_source["registry"]
    else:
        try:
            from ganzoo.registry import find_entry

            entry = find_entry(label) if isinstance(source, str) else None
            if entry is not None:
                step["registry"] = entry.name
        except Exception:  # noqa: BLE001 - the registry is optional context for the lineage
            pass
    return base, step

