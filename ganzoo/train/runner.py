"""``ganzoo.finetune``: a transfer recipe + the training engine + ADA, with snapshots and resume.

The run directory ``OUT``::

    OUT/run.json                   the run's settings (source, data, recipe, options)
    OUT/log.jsonl                  one JSON line per tick (kimg, img/s, losses, ADA p, r_t, metrics)
    OUT/snapshots/snapshot-NNNNNNNNNN/   at the start (kimg 0) and every --snap kimg, written
                                   atomically (temporary folder, then rename): a complete
                                   checkpoint directory (G_ema, G, D,
                                   config.json with the lineage so far) + training_state.safetensors
                                   + samples.png + metrics.json
    OUT/config.json, *.safetensors, samples.png   the final checkpoint (at the end): OUT itself is
                                   a checkpoint directory that generate/load/push consume as is

Killing the process loses at most one snapshot interval; ``resume=OUT`` continues from the
newest snapshot exactly (kimg, ADA p, optimizer moments, data order: the bytes of an
uninterrupted run), from the start when it was stopped before its first ``--snap``. A directory
left before even the start was saved holds no training: the same command starts it afresh.

Settings are checked before anything is loaded (:mod:`ganzoo.train.checks`); a resumed run keeps
its settings (:func:`resume_conflicts`), except those that may change (kimg, snap, batch_gpu,
metrics), which are applied and recorded in ``run.json`` under ``resumed``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from safetensors.torch import load_file

from ganzoo import __version__
from ganzoo._io import atomic_directory, atomic_path, atomic_write_text, check_output
from ganzoo._safetensors_write import save_file
from ganzoo.architectures import metadata_of
from ganzoo.checkpoint import CONFIG_NAME, GAN, WEIGHT_FILES
from ganzoo.errors import GanzooError
from ganzoo.train import checks
from ganzoo.train.dataset import SYNTH_PREFIX, TrainingImages, load_training_images
from ganzoo.train.loop import FAMILY_OPTIONS, Trainer, TrainingOptions
from ganzoo.train.recipes import prepare

RUN_FILE = "run.json"
LOG_FILE = "log.jsonl"
SNAPSHOTS = "snapshots"
STATE_FILE = "training_state.safetensors"
SAMPLES_FILE = "samples.png"
METRICS_FILE = "metrics.json"
SAMPLE_SEEDS = 16


def default_batch(resolution: int) -> int:
    """The StyleGAN2-ADA 'auto' batch for one GPU: min(4096 / res, 32), at least 4."""
    return max(min(4096 // resolution, 32), 4)


def _source_label(source: Any) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else "<in-memory GAN>"


def _load_source(source: Any, device: str) -> GAN:
    if isinstance(source, GAN):
        gan = source
    else:
        from ganzoo.api import load

        gan = load(source, device="cpu")
    gan.architecture.require("finetune")
    return gan


def latest_snapshot(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete snapshot of a run directory, or None."""
    folder = Path(run_dir) / SNAPSHOTS
    if not folder.is_dir():
        return None
    snaps = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("snapshot-") and (p / STATE_FILE).is_file())
    return snaps[-1] if snaps else None


class _Run:
    """Writes the run directory: snapshots, log lines, the final checkpoint."""

    def __init__(self, out: Path, trainer: Trainer, base_config: dict, lineage_step: dict, snap_kimg: float,
                 metrics: Sequence[str], keep_snapshots: int | None, is_writer: bool,
                 metrics_options: dict | None = None):  # fmt: skip
        self.out = out
        self.trainer = trainer
        self.base_config = base_config
        self.lineage_step = lineage_step
        self.snap_nimg = max(int(round(snap_kimg * 1000)), 1)
        self.metrics = list(metrics)
        self.metrics_options = dict(metrics_options or {})
        self.keep_snapshots = keep_snapshots
        self.is_writer = is_writer
        self.metric_values: dict[str, float] = {}
        self.tensorboard = None
        if is_writer:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

                # On resume, events after the snapshot (logged before the process stopped, and
                # retrained now) are dropped, so the curves do not double back.
                purge_step = trainer.cur_nimg + 1 if trainer.cur_nimg > 0 else None
                self.tensorboard = SummaryWriter(str(out / "tensorboard"), purge_step=purge_step)
            except Exception:  # noqa: BLE001 - TensorBoard is optional
                self.tensorboard = None

    def gan(self) -> GAN:
        t = self.trainer
        config = copy.deepcopy(self.base_config)
        step = copy.deepcopy(self.lineage_step)
        kimg = t.cur_nimg / 1000
        step["kimg"] = kimg
        step["metrics"] = dict(self.metric_values)
        config["lineage"] = list(config.get("lineage") or []) + [step]
        config["training"] = {
            "recipe": step["recipe"], "kimg": kimg, "ada_p": float(t.augment_pipe.p) if t.augment_pipe is not None else 0.0,
            "settings": step["settings"], "options": t.options.to_dict(), "r1_gamma": t.r1_gamma,
            "ema_kimg": t.ema_kimg, "ganzoo_version": __version__,
        }  # fmt: skip
        if self.metric_values:
            config["metrics"] = dict(self.metric_values)
        return GAN(t.G_ema, t.G, t.D, config=config)

    def snapshot(self, with_metrics: bool = True) -> Path:
        """Writes a complete snapshot atomically; returns its path.

        Args:
            with_metrics: compute the run's metrics for it (not for the start). When they fail,
                the snapshot is written without them before the error is raised: the training
                is never lost to a metric.
        """
        t = self.trainer
        path = self.out / SNAPSHOTS / f"snapshot-{t.cur_nimg:010d}"
        gan = self.gan()
        failure: GanzooError | None = None
        if self.metrics and with_metrics:
            try:
                self.metric_values.update(_compute_metrics(gan, t.data, self.metrics, self.metrics_options))
            except GanzooError as exc:
                failure = exc
                self.metric_values = {}  # no stale values from an earlier snapshot
            gan = self.gan()
        tensors, meta = t.state_tensors()
        with atomic_directory(path, overwrite=True) as tmp:
            gan.save(tmp, overwrite=True)
            save_file(tensors, str(tmp / STATE_FILE), metadata={"ganzoo": json.dumps(meta, sort_keys=True)})
            _write_samples(gan, tmp / SAMPLES_FILE)
            (tmp / METRICS_FILE).write_text(json.dumps({"kimg": t.cur_nimg / 1000, **self.metric_values}, sort_keys=True, indent=2) + "\n")
        self._prune()
        if failure is not None:
            raise GanzooError(f"{failure} (the snapshot at {t.cur_nimg / 1000:g} kimg was written without metrics; "
                              f"--resume {self.out} continues the run)") from None  # fmt: skip
        return path

    def _prune(self) -> None:
        if not self.keep_snapshots:
            return
        folder = self.out / SNAPSHOTS
        snaps = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("snapshot-"))
        for old in snaps[: -self.keep_snapshots]:
            shutil.rmtree(old, ignore_errors=True)

    def log(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True)
        with open(self.out / LOG_FILE, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        if self.tensorboard is not None:
            step = int(round(record["kimg"] * 1000))  # images seen; int(4.1 * 1000) would be 4099
            for key, value in record.items():
                # kimg is the step and time the event's own wall time
                if isinstance(value, (int, float)) and key not in ("kimg", "time"):
                    self.tensorboard.add_scalar(key, value, global_step=step)
            self.tensorboard.flush()

    def drop_log_after_snapshot(self) -> None:
        """On resume: removes log lines written after the snapshot (that training is redone),
        so the log holds each kimg once. Rewritten atomically."""
        path = self.out / LOG_FILE
        if not self.is_writer or not path.is_file():
            return
        limit = self.trainer.cur_nimg / 1000 + 1e-9
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get("kimg", 0) <= limit]
        if len(kept) != len(lines):
            atomic_write_text(path, "".join(line + "\n" for line in kept))

    def close(self) -> None:
        """Closes the TensorBoard writer (its file and flush thread)."""
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None

    def finalize(self, snapshot: Path) -> None:
        """Makes OUT itself the final checkpoint: the snapshot's files, config.json last."""
        names = [name for name in (*WEIGHT_FILES.values(), STATE_FILE, SAMPLES_FILE, METRICS_FILE) if (snapshot / name).is_file()]
        for name in names:
            with atomic_path(self.out / name) as tmp:
                shutil.copyfile(snapshot / name, tmp)
        with atomic_path(self.out / CONFIG_NAME) as tmp:
            shutil.copyfile(snapshot / CONFIG_NAME, tmp)


def _write_samples(gan: GAN, path: Path) -> None:
    from PIL import Image

    from ganzoo.images import image_grid

    grid = image_grid(_grid_samples(gan))
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path, format="PNG")


def _grid_samples(gan: GAN) -> np.ndarray:
    """Seeds ``0..SAMPLE_SEEDS-1``, seed i of a conditional model in class ``i % c_dim``."""
    c_dim = gan.metadata.num_classes
    if not c_dim:
        return gan.sample(seeds=range(SAMPLE_SEEDS), noise_mode="const", batch_size=8)
    images: list = [None] * SAMPLE_SEEDS
    for cls in range(min(c_dim, SAMPLE_SEEDS)):
        seeds = list(range(cls, SAMPLE_SEEDS, c_dim))
        for seed, image in zip(seeds, gan.sample(seeds=seeds, class_idx=cls, noise_mode="const", batch_size=8)):
            images[seed] = image
    return np.stack(images)


def _compute_metrics(gan: GAN, data: TrainingImages, names: Sequence[str], options: dict) -> dict[str, float]:
    """Metrics of G_ema against the training images (:func:`ganzoo.metrics.evaluate.evaluate`).

    Args:
        options: further arguments of ``evaluate`` (``num_gen``, ``allow_random_weights``, ...).
    """
    from ganzoo.metrics.evaluate import evaluate

    if data.path == "<in-memory>":
        raise GanzooError("--metrics needs the data as a folder (in-memory images cannot be re-read by the metrics)")
    # At the training resolution: the data as training read it (a mixed set resampled to the model's).
    result = evaluate(gan, data.path, metrics=list(names), progress=False, **{"resolution": data.resolution, **options})
    return {k: float(v) for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def finetune(
    source: str | os.PathLike | GAN | None = None,
    data: str | os.PathLike | torch.Tensor | None = None,
    out: str | os.PathLike | None = None,
    recipe: str | None = None,
    kimg: float | None = None,
    aug: str | None = None,
    batch: int | None = None,
    seed: int | None = None,
    snap: float | None = None,
    metrics: Sequence[str] = (),
    resume: str | os.PathLike | None = None,
    freeze_d: int | None = None,
    general_g: int | None = None,
    general_d: int | None = None,
    allow_random_d: bool = False,
    adafm_variant: str | None = None,
    resolution: int | None = None,
    mirror: bool = False,
    p: float | None = None,
    aug_preset: str | None = None,
    gamma: float | None = None,
    lr: float | None = None,
    batch_gpu: int | None = None,
    ema_kimg: float | None = None,
    target: float | None = None,
    device: str = "cpu",
    tick_kimg: float = 4.0,
    keep_snapshots: int | None = None,
    progress: bool = True,
    progress_label: str = "finetune",
    callback: Callable[[Trainer, dict], None] | None = None,
    metrics_options: dict | None = None,
    source_label: str | None = None,
    lineage_notes: Sequence[str] = (),
    resume_hint: str | None = None,
    **options: Any,
) -> Path:
    """Adapts a pretrained GAN to new data with a transfer recipe; returns the output directory.

    Args:
        source: registry name, Hub repo id, checkpoint directory, foreign file, or a
            :class:`~ganzoo.checkpoint.GAN` (not needed with ``resume``).
        data: folder of images (or uint8 ``[N, C, H, W]`` tensor) at the source's resolution.
        out: the run directory, which also becomes the final checkpoint directory. Must not
            exist (use ``resume`` to continue a run).
        recipe: ``'full'`` (None: ``'full'``), ``'freezed'``, ``'adafm'`` or ``'scratch'``.
        kimg: train until D has seen this many thousand images, counting from 0 (None: 100;
            with ``resume``, None keeps the run's own total).
        aug: ``'ada'`` (adaptive p; None: ``'ada'``), ``'fixed'`` (p = ``p``) or ``'none'``.
        batch: minibatch size (None: the StyleGAN2-ADA default for the resolution).
        seed: the seed of everything (same seed, same bytes on CPU; None: 0).
        snap: snapshot interval in kimg, also written at the end (None: 50, or the run's own).
        metrics: metric names (``fid``, ``kid``, ``pr``) computed at each snapshot.
        resume: a run directory to continue from its newest snapshot (every run has one from
            its start on). A resumed run keeps its settings: ``recipe``, ``aug``, ``p``,
            ``aug_preset``, ``batch``, ``seed``, ``lr``, ``gamma``, ``ema_kimg``, ``target``,
            ``mirror``, ``resolution``, ``freeze_d``, ``general_g``, ``general_d``,
            ``adafm_variant``, ``source``,
            ``out`` and ``**options`` that differ from the run's are refused (in one line naming
            them); ``kimg`` (not below where the run is), ``snap``, ``batch_gpu``, ``metrics``
            and ``metrics_options`` may change, and are applied and recorded in ``run.json``;
            ``device``, ``tick_kimg``, ``keep_snapshots``, ``progress`` and ``callback`` apply.
        freeze_d: ``freezed``: number of D layers to freeze.
        general_g, general_d: ``adafm``: general-part blocks of G and D.
        allow_random_d: start D from scratch when the source has none.
        adafm_variant: ``adafm``: ``'keep'`` (None: the default; every transferred block) or
            ``'paper'`` (the split as the AdaFM authors' code builds it, where the architecture
            defines it: GP-GAN's, see :mod:`ganzoo.train.recipes`).
        resolution: resample the data to this resolution (must be the source's).
        mirror: add x-flips of the data.
        p: augmentation probability (``fixed``; initial value for ``ada``).
        aug_preset: ``'bgc'`` (None: ``'bgc'``) or ``'bgcfnc'``, ...
        gamma: R1 weight (None: ``0.0002·res²/batch``).
        lr: learning rate of G and D (None: 0.0025, 0.002 at 1024² and above).
        batch_gpu: images per chunk (gradient accumulation; None: the whole batch).
        ema_kimg: G EMA half-life in kimg (None: ``batch·10/32``).
        target: ADA target of ``r_t`` (None: 0.6).
        device: ``'cpu'``, ``'cuda'``, ... (checked first: a missing CUDA is one line).
        tick_kimg: log (and progress) interval in kimg.
        keep_snapshots: keep only the newest this many snapshots (None: all).
        progress: show progress: a rich bar on a terminal, else one plain line per tick.
        progress_label: what the progress calls the run (``pretrain`` says ``pretrain``).
        callback: called with ``(trainer, stats)`` after every minibatch.
        metrics_options: further arguments of :func:`ganzoo.metrics.evaluate.evaluate` (e.g.
            ``num_gen``, default 50k; ``allow_random_weights`` for tests).
        source_label: how the lineage names the parent (default: ``source`` as given).
        lineage_notes: sentences added to this run's lineage step (e.g. what the data was).
        resume_hint: what the line printed on an interrupt (with ``progress``) tells the user to
            run to continue (default: ``--resume OUT``); ``""``: no line.
        **options: further :class:`~ganzoo.train.loop.TrainingOptions` fields, e.g.
            ``G_ortho=1e-4`` (BigGAN's orthogonal regularization of G, ``--g-ortho``; a family's
            own option is refused, in one line, for a source of a family that does not train
            with it).

    Returns:
        ``out``: a checkpoint directory (plus the run's snapshots and log).

    Raises:
        GanzooError: bad settings, missing data, a source without D, an existing ``out``, a
            device that is not there, metrics whose feature extractor cannot be had, sizes that
            cannot fit in memory (all of them before any training, see
            :mod:`ganzoo.train.checks`), a ``resume`` with settings that differ from the run's.
    """
    from ganzoo.train.distributed import maybe_init_distributed
    from ganzoo.train.loop import Distributed

    # Everything that can be refused is refused here, before anything is loaded or trained
    # (ganzoo.train.checks); the --feature-extractor name too (check_metrics), not at a snapshot.
    device = checks.check_device(device)
    checks.check_settings(kimg=kimg, snap=snap, tick_kimg=tick_kimg, keep_snapshots=keep_snapshots, recipe=recipe,
                          batch=batch, batch_gpu=batch_gpu, seed=seed, lr=lr, gamma=gamma, p=p, aug=aug,
                          aug_preset=aug_preset, target=target, ema_kimg=ema_kimg, freeze_d=freeze_d,
                          general_g=general_g, general_d=general_d, resolution=resolution,
                          adafm_variant=adafm_variant, **options)  # fmt: skip
    unknown = sorted(set(options) - set(TrainingOptions.__dataclass_fields__))
    if unknown:
        raise TypeError(f"finetune() got unexpected keyword argument(s) {', '.join(unknown)}")
    metrics = checks.check_metrics(metrics, metrics_options, data if resume is None else None)
    device = maybe_init_distributed(device)
    dist = Distributed()
    progress = progress and (progress_label or "finetune")  # _loop's progress: False or the label
    if resume is not None:
        asked = dict(source=source, out=out, recipe=recipe, aug=aug, p=p, aug_preset=aug_preset, batch=batch, seed=seed,
                     lr=lr, gamma=gamma, ema_kimg=ema_kimg, target=target, mirror=mirror or None, resolution=resolution,
                     freeze_d=freeze_d, general_g=general_g, general_d=general_d, adafm_variant=adafm_variant,
                     **options)  # fmt: skip
        return _resume(Path(resume), kimg=kimg, device=device, progress=progress, callback=callback,
                       data=data, snap=snap, keep_snapshots=keep_snapshots, tick_kimg=tick_kimg, batch_gpu=batch_gpu,
                       metrics=metrics, metrics_options=metrics_options, asked=asked, resume_hint=resume_hint)  # fmt: skip
    if source is None or data is None or out is None:
        raise GanzooError("finetune: give SOURCE, --data and --out (or --resume RUN_DIR)")
    out = Path(out)
    kimg = 100.0 if kimg is None else float(kimg)
    snap = 50.0 if snap is None else float(snap)
    recipe = "full" if recipe is None else recipe
    aug = "ada" if aug is None else aug
    seed = 0 if seed is None else int(seed)
    aug_preset = "bgc" if aug_preset is None else aug_preset
    target = 0.6 if target is None else float(target)
    if aug == "fixed" and p is None:
        raise GanzooError("--aug fixed needs --p P")
    # Before the work: a missing or empty folder that takes files (one rule for every --out); a
    # run interrupted before it saved anything is started again in place.
    restart = _unstarted_run(out)
    if not restart:
        check_output(out, "dir", hint=f"choose another --out, or continue it with --resume {out}")
    for name in checks.metric_extractors(metrics, metrics_options) if metrics else ():
        checks.check_extractor(name, bool((metrics_options or {}).get("allow_random_weights")), progress=progress)
    gan = _load_source(source, device)
    # A family's own option (--g-ortho) for a family whose objective does not read it: refused.
    checks.check_family_options(gan.architecture, TrainingOptions(**{k: options[k] for k in FAMILY_OPTIONS if k in options}))
    meta = gan.metadata
    res = meta.resolution
    if resolution is not None and int(resolution) != res:
        raise GanzooError(f"--resolution {resolution}: the source is {res}x{res}; the target resolution must match the source")
    batch = int(batch) if batch is not None else default_batch(res)
    _check_memory(gan, int(batch_gpu or batch // checks.world_size()), device, f"the source is {res}x{res}")
    # The networks first: a recipe may change the number of classes (--adafm-variant paper
    # rebuilds G's and D's class layers with one label), and the data is read for those.
    prepared = prepare(gan, recipe, seed=int(seed), freeze_d=freeze_d, general_g=general_g, general_d=general_d,
                       allow_random_d=allow_random_d, adafm_variant=adafm_variant)  # fmt: skip
    c_dim = metadata_of(prepared.G_ema).num_classes
    images = load_training_images(data, res, meta.channels, resample=resolution is not None, mirror=mirror,
                                  c_dim=c_dim)  # fmt: skip
    if metrics:
        checks.check_metric_data(metrics, int(images.describe().get("num_images", len(images))), metrics_options)
    # The architecture's own training settings (learning rates, regularization), then the user's.
    settings = {**gan.architecture.training_defaults(gan.G_ema.init_kwargs, batch, recipe), **options}
    if lr is not None:
        settings.update(lr_G=lr, lr_D=lr)
    if gamma is not None:
        settings["r1_gamma"] = gamma
    if ema_kimg is not None:
        settings.update(ema_kimg=ema_kimg, ema_beta=None)  # a half-life asked for replaces a fixed decay
    opts = TrainingOptions(
        batch=batch, batch_gpu=batch_gpu, seed=int(seed), total_kimg=float(kimg), aug=aug, aug_preset=aug_preset,
        aug_p=float(p) if p is not None else 0.0, ada_target=target, **settings,
    )  # fmt: skip
    trainer = Trainer(prepared.G, prepared.G_ema, prepared.D, images, opts, device=device)
    base_config, step = _lineage(gan, source, recipe, prepared, images, opts, trainer)
    if source_label is not None:
        step["parent"] = source_label
    step["notes"] = list(step["notes"]) + list(lineage_notes) + list(getattr(images, "notes", []))
    run_info = {
        "source": step["parent"], "recipe": recipe, "data": images.describe(), "options": opts.to_dict(),
        "snap_kimg": snap, "metrics": list(metrics), "metrics_options": dict(metrics_options or {}), "base_config": base_config, "lineage_step": step,
        "ganzoo_version": __version__,
    }  # fmt: skip
    dist.barrier()  # every process has checked that OUT is new before rank 0 creates it
    if dist.rank == 0:
        if restart:
            _clear_unstarted_run(out, progress)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / RUN_FILE, json.dumps(run_info, sort_keys=True, indent=2) + "\n")
    run = _Run(out, trainer, base_config, step, snap, metrics, keep_snapshots, is_writer=dist.rank == 0,
               metrics_options=metrics_options)
    if run.is_writer:
        # The start, as StyleGAN2-ADA's first snapshot: a run interrupted before its first --snap
        # resumes from here (the same bytes as an uninterrupted run), nothing is ever lost.
        run.snapshot(with_metrics=False)
    dist.barrier()
    _loop(run, int(round(kimg * 1000)), tick_kimg, progress, callback, resume_hint)
    return out


def _check_memory(gan: GAN, batch_gpu: int, device: str, what: str) -> None:
    """Refuses sizes that cannot fit in ``device``'s memory (:func:`checks.check_memory`)."""
    meta, arch = gan.metadata, gan.architecture
    D = gan.D if gan.D is not None else gan.G_ema
    checks.check_memory(meta.resolution, meta.channels, arch.widest(gan.G_ema.init_kwargs, meta.resolution),
                        arch.widest(D.init_kwargs, meta.resolution), batch_gpu, device, what=what)  # fmt: skip


def _lineage(gan: GAN, source: Any, recipe: str, prepared, images: TrainingImages, opts: TrainingOptions,
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
    label = _source_label(source)
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


def _interrupt_note(run: _Run, hint: str | None) -> str:
    """What an interrupted run keeps, and how to continue it (resumable from its start or from
    its newest snapshot)."""
    at = run.trainer.cur_nimg / 1000
    newest = latest_snapshot(run.out)
    how = hint if hint is not None else f"--resume {run.out}"
    if newest is None:
        return f"interrupted at {at:g} kimg, before {run.out} saved anything: run the same command again to start it afresh"
    kimg = int(newest.name.rsplit("-", 1)[1]) / 1000
    where = "its start (kimg 0)" if kimg == 0 else f"its snapshot at {kimg:g} kimg"
    return f"interrupted at {at:g} kimg: {run.out} resumes from {where} with {how}"


def _say(text: str) -> None:
    from ganzoo._console import note

    note(text)


def _loop(run: _Run, until_nimg: int, tick_kimg: float, progress: bool, callback, resume_hint: str | None = None) -> None:
    trainer = run.trainer
    tick_nimg = max(int(round(tick_kimg * 1000)), 1)
    start_nimg = trainer.cur_nimg
    next_tick = (trainer.cur_nimg // tick_nimg + 1) * tick_nimg
    next_snap = (trainer.cur_nimg // run.snap_nimg + 1) * run.snap_nimg
    tick_start_time, tick_start_nimg = time.perf_counter(), trainer.cur_nimg
    last_snapshot: Path | None = None
    bar = _progress(progress and run.is_writer)
    label = progress if isinstance(progress, str) else "finetune"
    task = bar.add_task(label, total=until_nimg / 1000, completed=start_nimg / 1000, rate="", info="") if bar else None
    bar_start = (time.perf_counter(), trainer.cur_nimg)
    interrupted = False
    try:
        if bar:
            bar.start()
        while trainer.cur_nimg < until_nimg:
            stats = trainer.step()
            if callback is not None:
                callback(trainer, stats)
            done = trainer.cur_nimg >= until_nimg
            if bar:
                info = "  ".join(f"{name} {stats[k]:.3f}" for k, name in _SHOWN.items() if k in stats)
                rate = (trainer.cur_nimg - bar_start[1]) / max(time.perf_counter() - bar_start[0], 1e-9)
                bar.update(task, completed=trainer.cur_nimg / 1000, info=info, rate=f"{rate:.1f} img/s")
            if trainer.cur_nimg >= next_tick or done:
                elapsed = time.perf_counter() - tick_start_time
                record = {"kimg": trainer.cur_nimg / 1000, "img_per_s": (trainer.cur_nimg - tick_start_nimg) / max(elapsed, 1e-9),
                          **{k: float(v) for k, v in stats.items()}, "time": time.time()}  # fmt: skip
                if run.is_writer:
                    run.log(record)
                if bar:  # a plain line per tick where output is not a terminal
                    bar.update(task, rate=f"{record['img_per_s']:.1f} img/s", tick=True)
                tick_start_time, tick_start_nimg = time.perf_counter(), trainer.cur_nimg
                next_tick = (trainer.cur_nimg // tick_nimg + 1) * tick_nimg
            if trainer.cur_nimg >= next_snap or done:
                if run.is_writer:
                    last_snapshot = run.snapshot()
                    if run.metric_values:
                        run.log({"kimg": trainer.cur_nimg / 1000, **run.metric_values, "time": time.time()})
                trainer.dist.barrier()
                next_snap = (trainer.cur_nimg // run.snap_nimg + 1) * run.snap_nimg
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if bar:
            bar.stop()
        run.close()
        if interrupted and progress and run.is_writer and resume_hint != "":
            _say(_interrupt_note(run, resume_hint))
    if run.is_writer:
        if last_snapshot is None:
            last_snapshot = latest_snapshot(run.out)
        if last_snapshot is not None:
            run.finalize(last_snapshot)
    trainer.dist.barrier()


_SHOWN = {"loss_G": "loss_G", "loss_D": "loss_D", "rt": "r_t", "ada_p": "p"}  # stats in the progress, by name


def _progress(enabled: bool):
    """A rich bar on a terminal; elsewhere (logs, ``| tee``) one plain line per tick."""
    if not enabled:
        return None
    from ganzoo import _console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ganzoo._progress import progress

    return progress(
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.completed:.2f}/{task.total:.1f} kimg"), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
        console=_console.stdout, unit="kimg", every=None, seconds=None,
    )  # fmt: skip


#: What a run directory holds before its start is saved (besides atomic-write temporaries).
_RUN_OWN_FILES = {RUN_FILE, LOG_FILE, SNAPSHOTS, "tensorboard"}


def _unstarted_run(out: Path) -> bool:
    """True for a run directory that was interrupted before it saved its start: its own
    ``run.json`` and no complete snapshot, nothing else. Such a run holds no training, and the
    same command starts it again in place."""
    try:
        if not (out / RUN_FILE).is_file() or latest_snapshot(out) is not None:
            return False
        names = [entry.name for entry in os.scandir(out)]
    except OSError:
        return False
    return all(name in _RUN_OWN_FILES or (name.startswith(".") and name.endswith(".tmp")) for name in names)


def _clear_unstarted_run(out: Path, progress: bool) -> None:
    """Removes what an :func:`_unstarted_run` left, so the run starts afresh in ``out``."""
    for entry in list(os.scandir(out)):
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path)
        else:
            path.unlink()
    if progress:
        _say(f"{out}: interrupted before it saved its start (no training was kept); starting it afresh")


def _same(mine: Any, theirs: Any) -> bool:
    numbers = (int, float)
    if isinstance(mine, numbers) and isinstance(theirs, numbers) and not isinstance(mine, bool) and not isinstance(theirs, bool):
        return math.isclose(float(mine), float(theirs), rel_tol=1e-9, abs_tol=0.0)
    return mine == theirs


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _kept_settings(info: dict, opts: TrainingOptions) -> dict[str, tuple[str, Any]]:
    """``finetune`` argument -> (its flag, the run's value) for the settings a resumed run keeps."""
    step = info.get("lineage_step") or {}
    settings = step.get("settings") or {}
    data = info.get("data") or {}
    return {
        "source": ("SOURCE", info.get("source")), "recipe": ("--recipe", info.get("recipe")), "aug": ("--aug", opts.aug),
        "p": ("--p", opts.aug_p), "aug_preset": ("--augpipe", opts.aug_preset), "batch": ("--batch", opts.batch),
        "seed": ("--seed", opts.seed), "lr": ("--lr", opts.lr_G),
        "gamma": ("--gamma", opts.r1_gamma if opts.r1_gamma is not None else step.get("r1_gamma")),
        "ema_kimg": ("ema_kimg", opts.ema_kimg if opts.ema_kimg is not None else opts.batch * 10 / 32),
        "target": ("--ada-target", opts.ada_target), "mirror": ("--xflip", bool(data.get("mirror"))),
        "resolution": ("--resolution", data.get("resolution")), "freeze_d": ("--freeze-d", settings.get("freeze_d")),
        "general_g": ("--general-g", settings.get("general_g")), "general_d": ("--general-d", settings.get("general_d")),
        "adafm_variant": ("--adafm-variant", settings.get("adafm_variant", "keep" if info.get("recipe") == "adafm" else None)),
    }  # fmt: skip


def resume_conflicts(run_dir: Path, info: dict, opts: TrainingOptions, asked: dict) -> list[str]:
    """The settings asked for (None: not given) that differ from the run's, as ``--flag VALUE
    (the run's: VALUE)``."""
    kept = _kept_settings(info, opts)
    fields = set(TrainingOptions.__dataclass_fields__)
    out = []
    for key, value in asked.items():
        if value is None:
            continue
        if key == "out":
            if Path(value).resolve() != run_dir.resolve():
                out.append(f"--out {value} (the run is {run_dir})")
            continue
        if key == "source":
            value = _source_label(value)
            theirs = str(info.get("source"))
            if os.path.exists(value) and os.path.exists(theirs) and os.path.samefile(value, theirs):
                continue
        if key in kept:
            flag, theirs = kept[key]
        elif key in fields:
            flag, theirs = checks.FLAGS.get(key, key), getattr(opts, key)
        else:
            continue
        if isinstance(theirs, list) or isinstance(value, tuple):
            value, theirs = list(value) if isinstance(value, (list, tuple)) else value, list(theirs or [])
        if not _same(value, theirs):
            out.append(f"{flag} {_shown(value)} (the run's: {_shown(theirs)})")
    return out


def _resume(run_dir: Path, kimg: float | None, device: str, progress: bool, callback, data, snap, keep_snapshots,
            tick_kimg: float, batch_gpu: int | None = None, metrics: Sequence[str] = (),
            metrics_options: dict | None = None, asked: dict | None = None,
            resume_hint: str | None = None) -> Path:  # fmt: skip
    """Continues a run from its newest snapshot (its start, if it was interrupted before its
    first ``snap``). Settings that differ from the run's are refused before anything is loaded;
    ``kimg``, ``snap``, ``batch_gpu``, ``metrics`` and ``metrics_options`` are applied and
    recorded in ``run.json``."""
    from ganzoo.train.loop import Distributed

    info_path = run_dir / RUN_FILE
    if not info_path.is_file():
        raise GanzooError(f"{run_dir}: not a ganzoo run directory (no {RUN_FILE})")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    snapshot = latest_snapshot(run_dir)
    if snapshot is None:
        raise GanzooError(f"{run_dir}: interrupted before it saved its start, so there is nothing to resume; "
                          f"run the same command again without --resume: it starts {run_dir} afresh")  # fmt: skip
    from safetensors import safe_open

    with safe_open(str(snapshot / STATE_FILE), framework="pt") as f:
        meta = json.loads(f.metadata()["ganzoo"])
    opts = TrainingOptions.from_dict(meta["options"])
    conflicts = resume_conflicts(run_dir, info, opts, asked or {})
    if conflicts:
        raise GanzooError(f"{run_dir}: cannot resume with {', '.join(conflicts)}: a resumed run keeps its settings; "
                          f"drop {'it' if len(conflicts) == 1 else 'them'}, or start a new run with another --out")  # fmt: skip
    cur_nimg = int(meta["cur_nimg"])
    if kimg is not None and int(round(float(kimg) * 1000)) < cur_nimg and not _same(float(kimg), opts.total_kimg):
        raise GanzooError(f"{run_dir}: the run is already at {cur_nimg / 1000:g} kimg, past --kimg {float(kimg):g}; "
                          f"give a --kimg above {cur_nimg / 1000:g} to train further")  # fmt: skip
    # What may change: applied now, recorded in run.json below.
    changed: dict[str, Any] = {}
    if kimg is not None and not _same(float(kimg), opts.total_kimg):
        changed["kimg"] = opts.total_kimg = float(kimg)
    if snap is not None and not _same(float(snap), info["snap_kimg"]):
        changed["snap"] = float(snap)
    if batch_gpu is not None and int(batch_gpu) != opts.batch_gpu:
        changed["batch_gpu"] = opts.batch_gpu = int(batch_gpu)
    if metrics and list(metrics) != list(info.get("metrics") or []):
        changed["metrics"] = list(metrics)
    if metrics_options is not None and dict(metrics_options) != dict(info.get("metrics_options") or {}):
        changed["metrics_options"] = dict(metrics_options)
    run_metrics = changed.get("metrics", info.get("metrics") or [])
    run_metrics_options = changed.get("metrics_options", info.get("metrics_options") or {})
    data_info = info["data"]
    if run_metrics:  # the metrics of the snapshots to come: checked now, not at the next snapshot
        on_disk = data_info["path"] != "<in-memory>" and not data_info.get("procedural")
        checks.check_metrics(run_metrics, run_metrics_options, data_info["path"] if on_disk else object())
        for name in checks.metric_extractors(run_metrics, run_metrics_options):
            checks.check_extractor(name, bool(run_metrics_options.get("allow_random_weights")), progress=progress)
    gan = GAN.load(snapshot)
    tensors = load_file(str(snapshot / STATE_FILE))
    neutral = gan.metadata
    res = neutral.resolution
    _check_memory(gan, int(opts.batch_gpu or opts.batch // checks.world_size()), device, f"the run is {res}x{res}")
    rebuildable = not data_info.get("procedural") or str(data_info["path"]).startswith(SYNTH_PREFIX)
    if data is None and (data_info["path"] == "<in-memory>" or not rebuildable):
        raise GanzooError(f"{run_dir}: the run trained on in-memory images; pass the same data to resume it")
    images = load_training_images(data if data is not None else data_info["path"], res, neutral.channels,
                                  resample=bool(data_info.get("resampled")), mirror=bool(data_info.get("mirror")),
                                  c_dim=neutral.num_classes)  # fmt: skip
    if images.sha256 != data_info["sha256"]:
        raise GanzooError(f"{run_dir}: the data changed since the run started (sha256 {images.sha256[:12]}… != {data_info['sha256'][:12]}…)")
    if run_metrics:
        checks.check_metric_data(run_metrics, int(data_info.get("num_images", len(images))), run_metrics_options)
    trainer = Trainer(gan.G, gan.G_ema, gan.D, images, opts, device=device)
    trainer.load_state(tensors, meta)
    dist = Distributed()
    if changed and dist.rank == 0:
        info["snap_kimg"] = changed.get("snap", info["snap_kimg"])
        info["options"] = {**info.get("options", {}), "total_kimg": opts.total_kimg, "batch_gpu": opts.batch_gpu}
        info["metrics"], info["metrics_options"] = list(run_metrics), dict(run_metrics_options)
        info.setdefault("resumed", []).append({"at_kimg": cur_nimg / 1000, "changed": changed, "ganzoo_version": __version__})
        atomic_write_text(info_path, json.dumps(info, sort_keys=True, indent=2) + "\n")
    run = _Run(run_dir, trainer, info["base_config"], info["lineage_step"], changed.get("snap", info["snap_kimg"]),
               run_metrics, keep_snapshots, is_writer=dist.rank == 0, metrics_options=run_metrics_options)  # fmt: skip
    run.drop_log_after_snapshot()
    _loop(run, int(round(opts.total_kimg * 1000)), tick_kimg, progress, callback, resume_hint)
    return run_dir
