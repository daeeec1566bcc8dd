"""Resuming a run (``finetune(resume=OUT)``, ``--resume OUT``): continues from the newest snapshot
exactly (kimg, ADA p, optimizer moments, data order: the bytes of an uninterrupted run), from
the start when the run was stopped before its first ``--snap``.

A resumed run keeps its settings (:func:`resume_conflicts` refuses those that differ, before
anything is loaded), except those that may change (kimg, snap, batch_gpu, metrics and their
options), which are applied and recorded in ``run.json`` under ``resumed``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from ganzoo import __version__
from ganzoo._io import atomic_write_text
from ganzoo.checkpoint import GAN
from ganzoo.errors import GanzooError
from ganzoo.train import checks
from ganzoo.train.dataset import SYNTH_PREFIX, load_training_images
from ganzoo.train.loop import Distributed, Trainer, TrainingOptions
from ganzoo.train.options import FinetuneOptions
from ganzoo.train.rundir import RUN_FILE, STATE_FILE, Run, check_memory, latest_snapshot


def source_label(source: Any) -> str:
    """How a run names its source: the path or name as given, or ``<in-memory GAN>``."""
    return str(source) if isinstance(source, (str, os.PathLike)) else "<in-memory GAN>"


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
            value = source_label(value)
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




def resume_run(run_dir: Path, options: FinetuneOptions, data: Any, asked: dict, device: str,
               metrics: list[str], progress: bool | str) -> Run:  # fmt: skip
    """Opens a run to continue from its newest snapshot (its start, if it was interrupted before
    its first ``snap``): its trainer is at the snapshot and its log holds nothing after it.
    Settings that differ from the run's are refused before anything is loaded; ``kimg``,
    ``snap``, ``batch_gpu``, ``metrics`` and ``metrics_options`` are applied and recorded in
    ``run.json``.

    Args:
        options: the settings given (None fields: the run's own).
        data: the run's data again (None: read again from where the run read it).
        asked: the settings the run keeps, as given (None: not given), for :func:`resume_conflicts`.
        device: the checked device this process trains on.
        metrics: the checked metric names (empty: the run's own).
        progress: False, or what the progress calls the run.
    """
    info, snapshot, meta, opts = _read_run(run_dir)
    conflicts = resume_conflicts(run_dir, info, opts, asked)
    if conflicts:
        raise GanzooError(f"{run_dir}: cannot resume with {', '.join(conflicts)}: a resumed run keeps its settings; "
                          f"drop {'it' if len(conflicts) == 1 else 'them'}, or start a new run with another --out")  # fmt: skip
    cur_nimg = int(meta["cur_nimg"])
    kimg = options.kimg
    if kimg is not None and int(round(float(kimg) * 1000)) < cur_nimg and not _same(float(kimg), opts.total_kimg):
        raise GanzooError(f"{run_dir}: the run is already at {cur_nimg / 1000:g} kimg, past --kimg {float(kimg):g}; "
                          f"give a --kimg above {cur_nimg / 1000:g} to train further")  # fmt: skip
    changed = _apply_changes(info, opts, options, metrics)
    run_metrics = changed.get("metrics", info.get("metrics") or [])
    run_metrics_options = changed.get("metrics_options", info.get("metrics_options") or {})
    _check_metrics_of(info["data"], run_metrics, run_metrics_options, progress)
    gan = GAN.load(snapshot)
    trainer = _resumed_trainer(run_dir, gan, info["data"], opts, data, device, run_metrics, run_metrics_options)
    trainer.load_state(load_file(str(snapshot / STATE_FILE)), meta)
    dist = Distributed()
    if changed and dist.rank == 0:
        _record_changes(run_dir / RUN_FILE, info, opts, changed, cur_nimg, run_metrics, run_metrics_options)
    run = Run(run_dir, trainer, info["base_config"], info["lineage_step"], changed.get("snap", info["snap_kimg"]),
              run_metrics, options.keep_snapshots, is_writer=dist.rank == 0, metrics_options=run_metrics_options)  # fmt: skip
    run.drop_log_after_snapshot()
    return run


def _read_run(run_dir: Path) -> tuple[dict, Path, dict, TrainingOptions]:
    """``run.json``, the newest snapshot, its training state's metadata and its options."""
    from safetensors import safe_open

    info_path = run_dir / RUN_FILE
    if not info_path.is_file():
        raise GanzooError(f"{run_dir}: not a ganzoo run directory (no {RUN_FILE})")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    snapshot = latest_snapshot(run_dir)
    if snapshot is None:
        raise GanzooError(f"{run_dir}: interrupted before it saved its start, so there is nothing to resume; "
                          f"run the same command again without --resume: it starts {run_dir} afresh")  # fmt: skip
    with safe_open(str(snapshot / STATE_FILE), framework="pt") as f:
        meta = json.loads(f.metadata()["ganzoo"])
    return info, snapshot, meta, TrainingOptions.from_dict(meta["options"])


def _apply_changes(info: dict, opts: TrainingOptions, options: FinetuneOptions, metrics: list[str]) -> dict[str, Any]:
    """Applies to ``opts`` what may change on resume (``kimg``, ``batch_gpu``); returns every
    change, ``snap``, the metrics and the thread count included, for ``run.json``."""
    changed: dict[str, Any] = {}
    if options.kimg is not None and not _same(float(options.kimg), opts.total_kimg):
        changed["kimg"] = opts.total_kimg = float(options.kimg)
    if options.snap is not None and not _same(float(options.snap), info["snap_kimg"]):
        changed["snap"] = float(options.snap)
    if options.batch_gpu is not None and int(options.batch_gpu) != opts.batch_gpu:
        changed["batch_gpu"] = opts.batch_gpu = int(options.batch_gpu)
    if metrics and list(metrics) != list(info.get("metrics") or []):
        changed["metrics"] = list(metrics)
    metrics_options = options.metrics_options
    if metrics_options is not None and dict(metrics_options) != dict(info.get("metrics_options") or {}):
        changed["metrics_options"] = dict(metrics_options)
    threads = options.threads  # finetune's: a ganzoo._threads.Threads
    if threads is not None and threads.count != (info.get("threads") or {}).get("count"):
        changed["threads"] = threads.to_dict()
    return changed


def _check_metrics_of(data_info: dict, metrics: list[str], metrics_options: dict, progress: bool | str) -> None:
    """The metrics of the snapshots to come: checked now, not at the next snapshot."""
    if not metrics:
        return
    on_disk = data_info["path"] != "<in-memory>" and not data_info.get("procedural")
    checks.check_metrics(metrics, metrics_options, data_info["path"] if on_disk else object())
    for name in checks.metric_extractors(metrics, metrics_options):
        checks.check_extractor(name, bool(metrics_options.get("allow_random_weights")), progress=progress)


def _resumed_trainer(run_dir: Path, gan: GAN, data_info: dict, opts: TrainingOptions, data: Any, device: str,
                     metrics: list[str], metrics_options: dict) -> Trainer:  # fmt: skip
    """A trainer of the snapshot's networks on the run's data (the same bytes, or refused)."""
    neutral = gan.metadata
    res = neutral.resolution
    check_memory(gan, int(opts.batch_gpu or opts.batch // checks.world_size()), device, f"the run is {res}x{res}")
    rebuildable = not data_info.get("procedural") or str(data_info["path"]).startswith(SYNTH_PREFIX)
    if data is None and (data_info["path"] == "<in-memory>" or not rebuildable):
        raise GanzooError(f"{run_dir}: the run trained on in-memory images; pass the same data to resume it")
    images = load_training_images(data if data is not None else data_info["path"], res, neutral.channels,
                                  resample=bool(data_info.get("resampled")), mirror=bool(data_info.get("mirror")),
                                  c_dim=neutral.num_classes)  # fmt: skip
    if images.sha256 != data_info["sha256"]:
        raise GanzooError(f"{run_dir}: the data changed since the run started (sha256 {images.sha256[:12]}… != {data_info['sha256'][:12]}…)")
    if metrics:
        checks.check_metric_data(metrics, int(data_info.get("num_images", len(images))), metrics_options)
    return Trainer(gan.G, gan.G_ema, gan.D, images, opts, device=device)


def _record_changes(info_path: Path, info: dict, opts: TrainingOptions, changed: dict, cur_nimg: int,
                    metrics: list[str], metrics_options: dict) -> None:  # fmt: skip
    """Records in ``run.json`` what changed on this resume, and the run's settings from now on."""
    info["snap_kimg"] = changed.get("snap", info["snap_kimg"])
    info["options"] = {**info.get("options", {}), "total_kimg": opts.total_kimg, "batch_gpu": opts.batch_gpu}
    info["metrics"], info["metrics_options"] = list(metrics), dict(metrics_options)
    if "threads" in changed:
        info["threads"] = changed["threads"]
    info.setdefault("resumed", []).append({"at_kimg": cur_nimg / 1000, "changed": changed, "ganzoo_version": __version__})
    atomic_write_text(info_path, json.dumps(info, sort_keys=True, indent=2) + "\n")
