"""``ganzoo analyze …``: filter diversity and weight-space distances from the command line (a thin
layer over :mod:`ganzoo.analysis`; torch is imported only when a command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from ganzoo._console import natural_width
from ganzoo.cli._common import console, json_option, json_output, wrote

analyze_app = typer.Typer(
    name="analyze",
    help="Weight-space analysis: filter diversity (Baek & Shim, CVPR 2022) and distances (GAN Cocktail).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(analyze_app, name="analyze")


_NETWORKS = (("G", "G_ema"), ("D", "D"))


def _labels(sources: list[str]) -> dict[str, str]:
    # Column headers: a path's last part (full paths would squeeze the table), unless two collide.
    short = {source: Path(source).name or source for source in sources}
    return short if len(set(short.values())) == len(short) else {source: source for source in sources}


def _cell(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.4f}"


def _filter_table(reports: dict, headers: dict[str, str]) -> Table:
    """The per-layer similarities, one column a model (headed ``headers[source]``)."""
    table = Table(title="mean pairwise filter cosine similarity (lower = more diverse filters)")
    table.add_column("net")
    table.add_column("layer", no_wrap=True)
    for source in reports:
        table.add_column(headers[source], justify="right", no_wrap=True)
    for network, role in _NETWORKS:
        values: dict[str, dict[str, float]] = {}
        for source, report in reports.items():
            for row in report[network] or []:
                values.setdefault(row["name"], {})[source] = row["mean_similarity"]
        for name, by_source in values.items():
            table.add_row(role, name, *(_cell(by_source.get(source)) for source in reports))
    table.add_section()
    for network, role in _NETWORKS:
        table.add_row(role, "mean over layers", *(_cell(r[f"{network}_mean"]) for r in reports.values()))
    return table


@analyze_app.command()
def filters(
    sources: List[str] = typer.Argument(..., help="Models: registry names, Hub ids, checkpoint dirs or foreign files."),
    json_out: Optional[str] = json_option("the per-layer tables"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw similarity per layer (PNG), G and D panels."),
) -> None:
    """Mean pairwise filter cosine similarity per convolution, models side by side (lower = more diverse)."""
    from ganzoo._io import check_output
    from ganzoo.analysis import filter_report, plot_filter_similarity

    as_json = json_output(json_out)  # before the work: results that cannot be written are not computed
    if plot is not None:
        check_output(plot, suffixes=(".png",), overwrite=True)
    reports = {source: filter_report(source) for source in dict.fromkeys(sources)}
    labels = _labels(list(reports))
    table = _filter_table(reports, labels)
    if natural_width(table) > console.width:  # model names are never cut: numbered columns and a key
        keys = {source: f"#{i}" for i, source in enumerate(reports, 1)}
        table = _filter_table(reports, keys)
        table.caption = "\n".join(f"{keys[source]}: {labels[source]}" for source in reports)
        table.caption_justify = "left"
    console.print(table)
    as_json.write({"models": [{"source": source, **report} for source, report in reports.items()]})
    if plot is not None:
        labels = _labels(list(reports))
        plot_filter_similarity({labels[source]: report for source, report in reports.items()}, plot)
        wrote(plot)


@analyze_app.command()
def distance(
    a: str = typer.Argument(..., help="Model A: registry name, Hub id, checkpoint dir or foreign file."),
    b: str = typer.Argument(..., help="Model B, of the same architecture."),
    json_out: Optional[str] = json_option("the result"),
) -> None:
    """GAN Cocktail's d(A, B): mean over layers of the L2 norm of the weight difference."""
    from ganzoo.analysis import distance as distance_fn

    as_json = json_output(json_out)  # before the work
    result = distance_fn(a, b)
    labels = _labels([a, b])
    table = Table(title=f"d({labels[a]}, {labels[b]}): mean over layers of ||θ_A − θ_B||₂")
    for column in ("network", "layers", "d"):
        table.add_column(column, justify="right" if column != "network" else "left")
    table.add_row("G_ema", str(result["G_layers"]), _cell(result["G"]))
    table.add_row("D", str(result["D_layers"]), _cell(result["D"]))
    table.add_section()
    table.add_row("together", str(result["layers"]), _cell(result["mean"]))
    console.print(table)
    as_json.write({"a": a, "b": b, **result})
