"""``ganzoo playground …``: the 2-D toy study from the command line (a thin layer over
:func:`ganzoo.playground.reproduce`).

``reproduce --num-seeds K`` was ``--seeds K`` (a count, where ``generate --seeds`` is a list of
seeds); the old spelling still works, hidden, with a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ganzoo._progress import progress as progress_display
from ganzoo.cli._common import console, json_option, json_output, old_spelling, renamed, say

playground_app = typer.Typer(
    name="playground",
    help="The 2-D toy study of Grigoryev et al. (ICLR 2022): why pretrained GANs help finetuning.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(playground_app, name="playground")


class _StepRateColumn(ProgressColumn):
    """G steps per second of the task."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f} G steps/s", style="progress.data.speed")


def _fmt(stat: dict) -> str:
    if stat["mean"] is None:
        return "n/a"
    return f"{stat['mean']:.2f}" if stat["std"] is None else f"{stat['mean']:.2f} ± {stat['std']:.2f}"


@playground_app.command()
def reproduce(
    out: Path = typer.Option(..., "--out", help="Folder to write (figures, results.json, report.md)."),
    quick: bool = typer.Option(False, "--quick", help="Few-minute setting instead of the paper's (see docs/playground.md)."),
    num_seeds: Optional[int] = typer.Option(None, "--num-seeds", help="Number of seeds K: the study runs for seeds S..S+K-1 (default 1)."),
    first_seed: int = typer.Option(0, "--first-seed", help="First seed S."),
    threads: int = typer.Option(1, "--threads", help="torch threads (1 is fastest for these tiny networks on a shared CPU)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
    json_out: Optional[str] = json_option("the summary"),
    old_seeds: Optional[int] = old_spelling(None, "--seeds", "--num-seeds"),
) -> None:
    """Reproduce Figures 2 and 3 of the paper: train on two sources, finetune 100+ GANs, correlate."""
    from ganzoo.errors import GanzooError
    from ganzoo.playground import report, study

    seeds = renamed("playground reproduce", "--seeds", "--num-seeds", old_seeds, num_seeds)
    seeds = 1 if seeds is None else seeds
    if seeds < 1:
        raise GanzooError(f"--num-seeds must be at least 1, not {seeds}")
    as_json = json_output(json_out)
    config = study.QUICK if quick else study.FULL  # looked up at call time
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _StepRateColumn(),
               TimeRemainingColumn())  # fmt: skip
    # A bar on a terminal; in a log (not a terminal) a plain line per stage every 10 % (and 30 s).
    with progress_display(*columns, console=console, transient=as_json.stdout, disable=as_json.stdout, unit="G steps",
                          rate_unit="G steps/s") as bar:  # fmt: skip
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        run = report.reproduce(out, seeds=range(first_seed, first_seed + seeds), config=config, threads=threads,
                               overwrite=overwrite, progress=progress)  # fmt: skip
    summary = run.summary
    table = Table(title="Figure 2: W1 to the target after finetuning (lower is better)")
    for column in ("start", "W1 after finetuning", "best W1", "recall before", "modes after", "paper"):
        table.add_column(column)
    paper = {"source_one": "lowest", "source_two": "middle", "random": "highest"}
    for name, label in (("source_one", "Source-I"), ("source_two", "Source-II"), ("random", "random init")):
        s = summary["figure2"][name]
        table.add_row(label, _fmt(s["w1_final"]), _fmt(s["w1_best"]), _fmt(s["start_recall"]),
                      _fmt(s["modes_covered"]), paper[name])  # fmt: skip
    console.print(table)
    f3, paper3 = summary["figure3"], report.PAPER["figure3"]
    table = Table(title="Figure 3: Pearson r over Source-I checkpoints")
    for column in ("pair", "paper", "ours (final W1)", "ours (best W1)"):
        table.add_column(column)
    table.add_row("recall vs W1", f"{paper3['pearson_recall_vs_w1']:.2f}", _fmt(f3["recall_vs_w1_final"]),
                  _fmt(f3["recall_vs_w1_best"]))  # fmt: skip
    table.add_row("cos(∇D, golden) vs W1", f"{paper3['pearson_grad_similarity_vs_w1']:.2f}",
                  _fmt(f3["grad_similarity_vs_w1_final"]), _fmt(f3["grad_similarity_vs_w1_best"]))  # fmt: skip
    console.print(table)
    say(f"{len(run.results)} seed(s) in {run.seconds:.0f} s; wrote {run.out_dir}/ "
        "(report.md, results.json, timing.json, figure2_seed*.png, figure3_seed*.png)")  # fmt: skip
    as_json.write({"out": str(run.out_dir), "seconds": round(run.seconds, 1), "summary": summary})


@playground_app.command()
def combine(
    runs: list[Path] = typer.Argument(..., help="Folders written by 'ganzoo playground reproduce' (same settings)."),
    out: Path = typer.Option(..., "--out", help="Folder to write: report and results over all their seeds."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
) -> None:
    """Merge runs of different seeds (e.g. one per machine) into one report with mean ± std."""
    from ganzoo.playground import report

    data = report.combine(runs, out, overwrite=overwrite)
    seeds = ", ".join(map(str, data["seeds"]))
    say(f"combined {len(runs)} run(s), seeds {seeds} -> {out}/ (report.md, results.json)")
