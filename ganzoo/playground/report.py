"""``reproduce``: run the study over seeds and write the figures, a JSON and a markdown report.

Files written to ``out_dir`` (the folder appears only when everything is written):

* ``results.json`` — settings, the paper's numbers, per-seed metrics and the mean ± std over
  seeds; byte-identical for the same settings, seeds, machine and thread count;
* ``report.md`` — the same numbers as tables, beside the paper's, with the measured runtime;
* ``timing.json`` — wall-clock seconds, overall and per seed (the only numbers that vary);
* ``figure2_seed{S}.png`` and ``figure3_seed{S}.png`` — the paper's Figures 2 and 3 per seed.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from ganzoo._io import atomic_directory, atomic_write_text, check_output
from ganzoo.errors import GanzooError
from ganzoo.playground import plots
from ganzoo.playground.study import FULL, QUICK, ProgressFn, SeedResult, StudyConfig, run_seed, summarize

RESULTS_FORMAT = 1   # Version of the results.json layout.

PAPER = {
    "reference": "Grigoryev, Voynov & Babenko, 'When, Why, and Which Pretrained GANs Are Useful?', "
                 "ICLR 2022, section 2.2 and appendix; authors' public playground notebook",
    "figure2": {
        "claim": "finetuned from Source-I: lowest W1, most target modes covered; from Source-II: in "
                 "between; from random initialisation: highest W1",
        "w1_order": ["source_one", "source_two", "random"],
    },
    "figure3": {
        "pearson_recall_vs_w1": -0.84,
        "pearson_grad_similarity_vs_w1": -0.73,
        "notebook_output": {"recall_vs_w1": -0.8430397471830448, "grad_similarity_vs_w1": -0.7277637020379226},
        "w1_used": "minimum of W1 over the evaluations during finetuning (every 250 of 1001 G steps)",
        "grad_similarity_sign_in_notebook": "cosine between the golden direction and the gradient of "
                                            "-log D(x), i.e. minus the cosine with grad D(x)",
    },
}


@dataclass
class Reproduction:
    """What :func:`reproduce` returns.

    Attributes:
        out_dir: the folder written.
        config: the settings used.
        results: one :class:`SeedResult` per seed.
        summary: mean ± std over seeds (see :func:`~ganzoo.playground.study.summarize`).
        seconds: wall-clock time of the whole run.
    """

    out_dir: Path
    config: StudyConfig
    results: list[SeedResult]
    summary: dict
    seconds: float


def reproduce(
    out_dir: str | Path,
    quick: bool = False,
    seeds: Sequence[int] = (0,),
    config: Optional[StudyConfig] = None,
    threads: int = 1,
    overwrite: bool = False,
    progress: Optional[ProgressFn] = None,
) -> Reproduction:
    """Runs the 2-D study for every seed and writes figures, ``results.json`` and ``report.md``.

    Args:
        out_dir: folder to create (replaced only with ``overwrite``).
        quick: use :data:`~ganzoo.playground.study.QUICK` instead of the paper's
            :data:`~ganzoo.playground.study.FULL` setting.
        seeds: one full study per seed.
        config: explicit settings (overrides ``quick``).
        threads: torch intra-op threads while the study runs. The networks are tiny, so one
            thread is fastest on a shared 2-core machine (a second one mostly waits on the
            first); the previous setting is restored afterwards.
        overwrite: replace ``out_dir`` if it exists.
        progress: optional ``progress(stage, done, total)`` callback.

    Returns:
        A :class:`Reproduction`.

    Raises:
        GanzooError: no seeds, a negative seed, fewer than 1 thread, invalid settings, or
            ``out_dir`` exists, is not empty, and ``overwrite`` is not set; or it cannot be written.
    """
    out_dir = Path(out_dir)
    seeds = _checked_seeds(seeds, threads)
    if config is None:
        config = QUICK if quick else FULL
    config.validate()
    check_output(out_dir, "dir", overwrite=overwrite)  # before the work: missing, empty, or --overwrite

    results, seconds, timing = _run_seeds(config, seeds, threads, progress)
    summary = summarize(results)
    preset = "full" if config == FULL else "quick" if config == QUICK else "custom"
    data = {
        "format": RESULTS_FORMAT,
        "study": PAPER["reference"],
        "preset": preset,
        "config": config.to_dict(),
        "seeds": seeds,
        "threads": threads,
        "torch": torch.__version__,
        "paper": PAPER,
        "summary": summary,
        "per_seed": [r.to_dict() for r in results],
    }
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        _write_run(tmp, data, timing, results, preset)
    return Reproduction(out_dir=out_dir, config=config, results=results, summary=summary, seconds=seconds)


def _checked_seeds(seeds: Sequence[int], threads: int) -> list[int]:
    """The seeds as integers, once they and the thread count are valid."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise GanzooError("playground: give at least one seed")
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise GanzooError(f"playground: seeds must be distinct and non-negative, got {seeds}")
    if threads < 1:
        raise GanzooError(f"playground: threads must be at least 1, not {threads}")
    return seeds


def _run_seeds(config: StudyConfig, seeds: list[int], threads: int,
               progress: Optional[ProgressFn]) -> tuple[list[SeedResult], float, dict]:  # fmt: skip
    """Runs the study for every seed with ``threads`` torch threads (the previous setting is
    restored); returns the results, the wall-clock seconds and the ``timing.json`` content."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    started, cpu_started = time.perf_counter(), time.process_time()
    results, seconds_per_seed, cpu_per_seed = [], [], []
    try:
        for seed in seeds:
            seed_started, seed_cpu = time.perf_counter(), time.process_time()
            results.append(run_seed(config, seed, progress))
            seconds_per_seed.append(time.perf_counter() - seed_started)
            cpu_per_seed.append(time.process_time() - seed_cpu)
    finally:
        torch.set_num_threads(previous_threads)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    timing = {
        "seconds_total": round(seconds, 1),
        "seconds_per_seed": [round(s, 1) for s in seconds_per_seed],
        # CPU time of this process: what the run costs when it has the cores to itself.
        "cpu_seconds_total": round(cpu_seconds, 1),
        "cpu_seconds_per_seed": [round(s, 1) for s in cpu_per_seed],
        "threads": threads,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    return results, seconds, timing


def _write_run(folder: Path, data: dict, timing: dict, results: list[SeedResult], preset: str) -> None:
    """Writes ``results.json``, ``timing.json``, every seed's figures and ``report.md`` into ``folder``."""
    atomic_write_text(folder / "results.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
    atomic_write_text(folder / "timing.json", json.dumps(timing, indent=2, sort_keys=True) + "\n")
    for result in results:
        plots.plot_figure2(result.samples, result.figure2, folder / f"figure2_seed{result.seed}.png",
                           title=f"Figure 2, seed {result.seed} ({preset})")
        plots.plot_figure3(result.figure3, folder / f"figure3_seed{result.seed}.png",
                           title=f"Figure 3, seed {result.seed} ({preset}): W1 after finetuning")
    atomic_write_text(folder / "report.md", render_markdown(data, timing))


def combine(run_dirs: Sequence[str | Path], out_dir: str | Path, overwrite: bool = False) -> dict:
    """Merges the folders of several :func:`reproduce` runs of the same settings (for instance
    one seed per machine or per night) into one report over all their seeds.

    Args:
        run_dirs: folders written by :func:`reproduce`.
        out_dir: folder to create: ``results.json``, ``report.md`` and ``timing.json`` over all
            seeds, and every run's figures.
        overwrite: replace ``out_dir`` if it exists.

    Returns:
        The merged ``results.json`` content.

    Raises:
        GanzooError: a folder without a readable ``results.json``, runs with different settings,
            a seed present twice, or ``out_dir`` exists without ``overwrite``.
    """
    out_dir = Path(out_dir)
    if not run_dirs:
        raise GanzooError("playground combine: give at least one run folder")
    check_output(out_dir, "dir", overwrite=overwrite)
    runs, timings = [], []
    for run_dir in map(Path, run_dirs):
        try:
            runs.append(json.loads((run_dir / "results.json").read_text(encoding="utf-8")))
            timing_path = run_dir / "timing.json"
            timings.append(json.loads(timing_path.read_text(encoding="utf-8")) if timing_path.exists() else None)
        except (OSError, json.JSONDecodeError) as exc:
            raise GanzooError(f"{run_dir}: no readable results.json ({exc})") from None
        if runs[-1].get("format") != RESULTS_FORMAT:
            raise GanzooError(f"{run_dir}/results.json: format {runs[-1].get('format')!r}, expected {RESULTS_FORMAT}")
    for run_dir, run in zip(list(run_dirs)[1:], runs[1:]):
        if run["config"] != runs[0]["config"]:
            raise GanzooError(f"{run_dir}: different settings from {run_dirs[0]}; only runs of one setting combine")
    per_seed = sorted((entry for run in runs for entry in run["per_seed"]), key=lambda entry: entry["seed"])
    seeds = [entry["seed"] for entry in per_seed]
    if len(set(seeds)) != len(seeds):
        raise GanzooError(f"playground combine: a seed appears twice among {seeds}")
    results = [SeedResult(seed=e["seed"], figure2=e["figure2"], figure3=e["figure3"]) for e in per_seed]
    data = {**runs[0], "seeds": seeds, "summary": summarize(results), "per_seed": per_seed}
    known = [t for t in timings if t is not None]
    timing = {
        "seconds_total": round(sum(t["seconds_total"] for t in known), 1),
        "seconds_per_seed": [s for t in known for s in t["seconds_per_seed"]],
        "threads": runs[0]["threads"],
        **({"cpu_seconds_total": round(sum(t["cpu_seconds_total"] for t in known), 1),
            "cpu_seconds_per_seed": [s for t in known for s in t["cpu_seconds_per_seed"]]}
           if known and all("cpu_seconds_total" in t for t in known) else {}),
        "machine": "; ".join(sorted({t["machine"] for t in known})) or "unknown",
        "combined_from": [str(d) for d in run_dirs],
    }
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        atomic_write_text(tmp / "results.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
        atomic_write_text(tmp / "timing.json", json.dumps(timing, indent=2, sort_keys=True) + "\n")
        for run_dir in map(Path, run_dirs):
            for figure in sorted(run_dir.glob("figure[23]_seed*.png")):
                (tmp / figure.name).write_bytes(figure.read_bytes())
        atomic_write_text(tmp / "report.md", render_markdown(data, timing))
    return data


def _fmt(stat: dict, digits: int = 2) -> str:
    mean, std = stat["mean"], stat["std"]
    if mean is None:
        return "n/a"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _negated(stat: dict) -> dict:
    return {"mean": None if stat["mean"] is None else -stat["mean"], "std": stat["std"]}


def render_markdown(data: dict, timing: dict) -> str:
    """The markdown report for a ``results.json`` payload and its timing.

    Args:
        data: the ``results.json`` content.
        timing: the ``timing.json`` content.

    Returns:
        Markdown text.
    """
    lines = _setting_lines(data, timing) + _figure2_lines(data) + _figure3_lines(data) + _per_seed_lines(data)
    return "\n".join(lines)


def _setting_lines(data: dict, timing: dict) -> list[str]:
    """The title, the study's settings and the measured runtime."""
    config, seeds = data["config"], data["seeds"]
    return [
        "# 2-D toy study of GAN finetuning — reproduction",
        "",
        f"Study: {data['study']}.",
        "",
        f"Setting: `{data['preset']}` — {config['pretrain_steps']} pretraining G steps, "
        f"{config['num_checkpoints']} Source-I checkpoints (every {config['checkpoint_every']} steps), "
        f"{config['finetune_steps']} finetuning G steps, W1 on {config['w1_samples']} vs "
        f"{config['w1_samples']} points every {config['eval_every']} steps, recall (k={config['recall_k']}) "
        f"on {config['metric_samples']} vs {config['metric_samples']} points. "
        f"Seeds: {', '.join(map(str, seeds))} ({len(seeds)}); values are mean ± std over seeds.",
        "",
        f"Runtime: {timing['seconds_total']:.0f} s wall-clock in all, per seed "
        f"{', '.join(f'{s:.0f}' for s in timing['seconds_per_seed'])} s "
        f"({timing['threads']} torch thread(s); {timing['machine']})"
        + (f"; CPU time {timing['cpu_seconds_total']:.0f} s, per seed "
           f"{', '.join(f'{s:.0f}' for s in timing['cpu_seconds_per_seed'])} s "
           "(the wall-clock time with a core to itself)." if "cpu_seconds_total" in timing else "."),
        "",
    ]


def _figure2_lines(data: dict) -> list[str]:
    """Figure 2's table beside the paper's claim, and in how many seeds its W1 ordering holds."""
    summary, k = data["summary"], len(data["seeds"])
    lines = [
        "## Figure 2 — finetuning to the target from each starting point",
        "",
        "| start | W1 after finetuning | best W1 during finetuning | recall before | recall after | "
        "precision after | modes covered after | paper |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    paper_rank = {"source_one": "lowest W1, most modes", "source_two": "in between", "random": "highest W1"}
    names = {"source_one": "Source-I", "source_two": "Source-II", "random": "random init"}
    for name, label in names.items():
        s = summary["figure2"][name]
        lines.append(
            f"| {label} | {_fmt(s['w1_final'])} | {_fmt(s['w1_best'])} | {_fmt(s['start_recall'])} | "
            f"{_fmt(s['recall'])} | {_fmt(s['precision'])} | {_fmt(s['modes_covered'], 1)} / 10 | {paper_rank[name]} |"
        )
    checks = summary["checks"]
    return lines + [
        "",
        f"W1 ordering Source-I < Source-II < random: holds in {sum(checks['w1_final_ordering_holds'])} of {k} "
        f"seed(s) (final W1), {sum(checks['w1_best_ordering_holds'])} of {k} (best W1). "
        f"Source-I beats random: {sum(checks['source_one_beats_random'])} of {k}. "
        f"Pretrained recall Source-I > Source-II: {sum(checks['source_one_recall_above_source_two'])} of {k}.",
        "",
    ]


def _figure3_lines(data: dict) -> list[str]:
    """Figure 3's correlations beside the paper's, in both sign conventions of the gradient cosine."""
    f3 = data["summary"]["figure3"]
    paper = data["paper"]["figure3"]
    return [
        f"## Figure 3 — starting metrics of {data['config']['num_checkpoints']} Source-I checkpoints vs W1 after "
        "finetuning",
        "",
        "Pearson correlation over the checkpoints (per seed, then mean ± std over seeds).",
        "",
        "| pair | paper | ours, W1 after finetuning | ours, best W1 (the authors' notebook) |",
        "| --- | --- | --- | --- |",
        f"| recall vs W1 | {paper['pearson_recall_vs_w1']:.2f} | {_fmt(f3['recall_vs_w1_final'])} | "
        f"{_fmt(f3['recall_vs_w1_best'])} |",
        f"| cos(∇D, golden) vs W1 | {paper['pearson_grad_similarity_vs_w1']:.2f} | "
        f"{_fmt(f3['grad_similarity_vs_w1_final'])} | {_fmt(f3['grad_similarity_vs_w1_best'])} |",
        f"| same, notebook sign: cos(∇(−log D), golden) vs W1 | {paper['pearson_grad_similarity_vs_w1']:.2f} | "
        f"{_fmt(_negated(f3['grad_similarity_vs_w1_final']))} | {_fmt(_negated(f3['grad_similarity_vs_w1_best']))} |",
        f"| cos(∇D, golden) vs recall | — | {_fmt(f3['grad_similarity_vs_recall'])} | — |",
        "",
        "The paper's numbers are the output of the authors' notebook (−0.843 and −0.728), which "
        "correlates the *smallest* W1 seen during finetuning and computes the gradient cosine with "
        "the gradient of the generator loss −log D(x), i.e. with the opposite sign of ∇D(x) as the "
        "text defines it; both conventions are shown. See `docs/playground.md` for the discussion.",
        "",
    ]


def _per_seed_lines(data: dict) -> list[str]:
    """Each seed's final W1 and correlations, then the figure files."""
    lines = [
        "## Per seed",
        "",
        "| seed | W1 Source-I | W1 Source-II | W1 random | r(recall, W1) | r(cos ∇D, W1) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for seed_data in data["per_seed"]:
        f2, p = seed_data["figure2"], seed_data["figure3"]["pearson"]
        r1, r2 = p["recall_vs_w1_final"]["r"], p["grad_similarity_vs_w1_final"]["r"]
        lines.append(
            f"| {seed_data['seed']} | {f2['source_one']['w1_final']:.2f} | {f2['source_two']['w1_final']:.2f} | "
            f"{f2['random']['w1_final']:.2f} | {'n/a' if r1 is None else f'{r1:.2f}'} | "
            f"{'n/a' if r2 is None else f'{r2:.2f}'} |"
        )
    lines += ["", "Figures: " + ", ".join(
        f"`figure2_seed{s}.png`, `figure3_seed{s}.png`" for s in data["seeds"]) + ".", ""]
    return lines
