"""``ganzoo metrics`` and ``ganzoo rank``: a GAN against a dataset, and choosing a source
checkpoint for one (logic in :mod:`ganzoo.metrics` and :mod:`ganzoo.ranking`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ganzoo.cli._common import apply_threads, console, json_option, json_output, note, threads_option, wrote


def register(app: typer.Typer) -> None:
    app.command()(metrics)
    app.command()(rank)


def metrics(
    src: str = typer.Argument(..., help="Checkpoint directory, foreign checkpoint file, registry name or Hub repo id."),
    data: Path = typer.Option(..., "--data", help="Real images: a folder (recursive) or a zip."),
    metric_names: str = typer.Option("fid,kid,pr,dc", "--metrics", help="Comma-separated: fid, kid, pr, dc."),
    num_gen: int = typer.Option(50_000, "--num-gen", help="Generated samples (fid50k_full uses 50k)."),
    feature_extractor: Optional[str] = typer.Option(None, "--feature-extractor", help="One extractor for all metrics (default: inception-fid for FID/KID, vgg16-pr for PR/DC)."),
    seed: int = typer.Option(0, "--seed", help="First sample seed."),
    class_idx: Optional[str] = typer.Option(None, "--class", help="Conditional models: sample only this class (index or name); default: image i of class i % classes."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Resize the data to this size first (default: the most common size among its images)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, ..."),
    strict: bool = typer.Option(False, "--strict", help="Unreadable data files are an error, not a warning."),
    random_weights: bool = typer.Option(False, "--random-weights", help="Random-weight extractors: testing only, values are meaningless."),
    threads: Optional[int] = threads_option(),
    json_out: Optional[str] = json_option("the results"),
) -> None:
    """Compute FID, KID, precision/recall and density/coverage of a GAN against a dataset."""
    from ganzoo.metrics.evaluate import evaluate
    from ganzoo.train.checks import check_device

    check_device(device)  # one line before any work
    apply_threads(threads)
    as_json = json_output(json_out)  # before the work: a result that cannot be written is not computed
    result = evaluate(src, data, metrics=metric_names, num_gen=num_gen, feature_extractor=feature_extractor, seed=seed,
                      resolution=resolution, device=device, allow_random_weights=random_weights, strict=strict,
                      class_idx=class_idx)  # fmt: skip
    table = Table(title=f"{src} vs {data} ({result['num_real']} real, {result['num_gen']} generated)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("features")
    extractors = result["extractors"]
    for key, family in (("fid", "fid"), ("kid", "kid"), ("precision", "pr"), ("recall", "pr"), ("density", "dc"), ("coverage", "dc")):
        if key in result:
            table.add_row(key, f"{result[key]:.6g}", extractors[family])
    console.print(table)
    for text in result["notes"]:
        note(text)
    as_json.write(result)


def rank(
    target: Path = typer.Option(..., "--target", help="Target images: a folder (recursive) or a zip."),
    candidates: Optional[list[str]] = typer.Option(None, "--candidates", help="Registry names, Hub ids or checkpoint dirs (repeat or comma-separate), or 'all' (default: every registry entry with the target's channel count)."),
    metric: str = typer.Option("fid", "--metric", help="Sort key: fid (default, most reliable), recall, kid or precision."),
    regime: str = typer.Option("generated", "--regime", help="generated (candidate samples) or real (published source-dataset features)."),
    num_gen: int = typer.Option(1000, "--num-gen", help="Samples per candidate."),
    feature_extractor: str = typer.Option("inception-fid", "--feature-extractor", help="inception-fid, vgg16-pr, timm:NAME[@SIZE], or pixels[@SIZE] (no weights: works offline)."),
    seed: int = typer.Option(0, "--seed", help="First sample seed."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Resize the target to this size first (default: the most common size among its images)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, ..."),
    strict: bool = typer.Option(False, "--strict", help="Unreadable target files are an error, not a warning."),
    random_weights: bool = typer.Option(False, "--random-weights", help="Random-weight extractor: testing only, values are meaningless."),
    threads: Optional[int] = threads_option(),
    json_out: Optional[str] = json_option("the ranking"),
    plot_out: Optional[Path] = typer.Option(None, "--plot", help="Also write a bar plot (PNG) here."),
    report_out: Optional[Path] = typer.Option(None, "--report", metavar="PATH", help="Also write a self-contained HTML page here: target thumbnails, each candidate's samples beside its scores, the recommendation."),
) -> None:
    """Rank candidate source checkpoints for finetuning on a target dataset (Grigoryev et al., 2022)."""
    from ganzoo.rank_report import candidate_notes, render_table
    from ganzoo.ranking import rank as rank_fn
    from ganzoo.train.checks import check_device

    check_device(device)  # one line before any work
    apply_threads(threads)
    as_json = json_output(json_out)
    # rank() checks the --json file, the plot and the report before the work, and writes them.
    result = rank_fn(target, candidates=candidates, metric=metric, regime=regime, num_gen=num_gen,
                     feature_extractor=feature_extractor, seed=seed, resolution=resolution, device=device,
                     allow_random_weights=random_weights, strict=strict, json_out=as_json.path, plot_out=plot_out,
                     report_out=report_out)  # fmt: skip
    console.print(render_table(result, width=console.width))  # narrow: columns left out (named), never cut
    for text in result.notes + candidate_notes(result):
        note(text)
    if result.recommended and result.caveats:  # the table's caption says why
        console.print(f"least far from the target, with low confidence: [bold]{result.recommended}[/]", soft_wrap=True)
    elif result.recommended:
        console.print(f"recommended source: [bold]{result.recommended}[/]", soft_wrap=True)
    console.print(f"recipe hint: {result.recipe_hint}", soft_wrap=True, markup=False)
    for path in (as_json.path, plot_out, report_out):
        if path is not None:
            wrote(path)
    if as_json.stdout:
        as_json.write(result.to_dict())
