"""A run directory and what every run in it, new or resumed, shares: the layout, the snapshot
writer, the loop that trains and writes, and the memory check of its networks.

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

A directory left before even the start was saved holds no training (:func:`unstarted_run`):
the same command starts it afresh.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ganzoo import __version__
from ganzoo._io import atomic_directory, atomic_path, atomic_write_text
from ganzoo._safetensors_write import save_file
from ganzoo.checkpoint import CONFIG_NAME, GAN, WEIGHT_FILES
from ganzoo.errors import GanzooError
from ganzoo.train import checks
from ganzoo.train.dataset import TrainingImages
from ganzoo.train.loop import Trainer

RUN_FILE = "run.json"
LOG_FILE = "log.jsonl"
SNAPSHOTS = "snapshots"
STATE_FILE = "training_state.safetensors"
SAMPLES_FILE = "samples.png"
METRICS_FILE = "metrics.json"
SAMPLE_SEEDS = 16


def latest_snapshot(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete snapshot of a run directory, or None."""
    folder = Path(run_dir) / SNAPSHOTS
    if not folder.is_dir():
        return None
    snaps = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("snapshot-") and (p / STATE_FILE).is_file())
    return snaps[-1] if snaps else None


class Run:
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


def check_memory(gan: GAN, batch_gpu: int, device: str, what: str) -> None:
    """Refuses sizes that cannot fit in ``device``'s memory (:func:`checks.check_memory`)."""
    meta, arch = gan.metadata, gan.architecture
    D = gan.D if gan.D is not None else gan.G_ema
    checks.check_memory(meta.resolution, meta.channels, arch.widest(gan.G_ema.init_kwargs, meta.resolution),
                        arch.widest(D.init_kwargs, meta.resolution), batch_gpu, device, what=what)  # fmt: skip


def _interrupt_note(run: Run, hint: str | None) -> str:
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


def run_loop(run: Run, until_nimg: int, tick_kimg: float, progress: bool | str, callback: Callable | None,
             resume_hint: str | None = None) -> None:  # fmt: skip
    """Trains ``run`` until D has seen ``until_nimg`` images: a log line every ``tick_kimg``, a
    snapshot every ``snap`` and at the end, then ``OUT`` made the final checkpoint. ``progress``:
    False, or what the progress calls the run; ``resume_hint``: see
    :attr:`~ganzoo.train.options.FinetuneOptions.resume_hint`."""
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
            from ganzoo._console import note_interruption

            note_interruption(_interrupt_note(run, resume_hint))
    if run.is_writer:
        if last_snapshot is None:
            last_snapshot = latest_snapshot(run.out)
        if last_snapshot is not None:
            run.finalize(last_snapshot)
    trainer.dist.barrier()


_SHOWN = {"loss_G": "loss_G", "loss_D": "loss_D", "rt": "r_t", "ada_p": "p"}  # stats in the progress, by name


def _progress(enabled: bool):
    """A rich bar on a terminal; elsewhere (logs, ``| tee``) one plain line per tick, and one at
    least every 30 s between ticks (:func:`ganzoo._progress.line_seconds`)."""
    if not enabled:
        return None
    from ganzoo import _console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ganzoo._progress import progress

    return progress(
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.completed:.2f}/{task.total:.1f} kimg"), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
        console=_console.stdout, unit="kimg", every=None,
    )  # fmt: skip


#: What a run directory holds before its start is saved (besides atomic-write temporaries).
_RUN_OWN_FILES = {RUN_FILE, LOG_FILE, SNAPSHOTS, "tensorboard"}


def unstarted_run(out: Path) -> bool:
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


def clear_unstarted_run(out: Path, progress: bool) -> None:
    """Removes what an :func:`unstarted_run` left, so the run starts afresh in ``out``."""
    for entry in list(os.scandir(out)):
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path)
        else:
            path.unlink()
    if progress:
        _say(f"{out}: interrupted before it saved its start (no training was kept); starting it afresh")

