"""``ganzoo merge A B [C …] --out DIR``: a thin layer over :func:`ganzoo.cocktail.merge`.

Nothing here imports torch at module level: ``ganzoo list`` loads this module too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ganzoo.cli._common import apply_threads, json_option, json_output, say, threads_option


def register(app: typer.Typer) -> None:
    app.command("merge")(merge_command)


def merge_command(
    sources: List[str] = typer.Argument(..., help="Models to merge: registry names or aliases, Hub ids, checkpoint dirs."),
    out: Path = typer.Option(..., "--out", help="Output directory (becomes a conditional checkpoint directory)."),
    class_names: Optional[str] = typer.Option(None, "--class-names", help="Comma-separated class names, one per source (default: the source names)."),
    root: Optional[str] = typer.Option(None, "--root", help="Root model (class name, source or index; default: the first)."),
    root_kimg: float = typer.Option(100.0, "--root-kimg", help="kimg of each rooting stage."),
    merge_kimg: float = typer.Option(100.0, "--merge-kimg", help="kimg of the union fine-tuning stage."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Minibatch size (default: by resolution)."),
    seed: int = typer.Option(0, "--seed", help="Seed of everything."),
    aug: str = typer.Option("ada", "--aug", help="ada | fixed | none."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted merge in --out."),
    method: str = typer.Option("cocktail", "--method", help="cocktail | scratch | transfer | ewc | freezed (baselines: same budget)."),
    evaluate: bool = typer.Option(False, "--eval", help="Per-class and union FID/KID against samples of each source."),
    num_gen: int = typer.Option(1000, "--num-gen", help="--eval: images per class and per source."),
    feature_extractor: str = typer.Option("inception-fid", "--feature-extractor", help="--eval: extractor (pixels needs no weights)."),
    snap: Optional[float] = typer.Option(None, "--snap", help="Snapshot interval in kimg (default: the engine's)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, ..."),
    threads: Optional[int] = threads_option(),
    json_out: Optional[str] = json_option("the summary (merge_summary.json's content)"),
) -> None:
    """Merge pretrained GANs into one class-conditional GAN (GAN Cocktail: rooting, averaging, union fine-tuning)."""
    from ganzoo.cocktail import SUMMARY_FILE, merge
    from ganzoo.train.checks import check_device
    from ganzoo.train.options import FinetuneOptions

    check_device(device)  # one line before any work (stage 1 would otherwise train first)
    chosen = apply_threads(threads)
    as_json = json_output(json_out)
    names = [n.strip() for n in class_names.split(",")] if class_names is not None else None
    options = FinetuneOptions(batch=batch, seed=seed, aug=aug, snap=snap, device=device, threads=chosen,
                              progress=not as_json.stdout)  # fmt: skip
    path = merge(sources, out, root=root, root_kimg=root_kimg, merge_kimg=merge_kimg, options=options, resume=resume,
                 method=method, eval=evaluate, num_gen=num_gen, class_names=names,
                 eval_options={"feature_extractor": feature_extractor})  # fmt: skip
    summary = json.loads((path / SUMMARY_FILE).read_text(encoding="utf-8"))
    for name, row in summary["distances"].items():
        before = "n/a" if row.get("d(r,i)") is None else f"{row['d(r,i)']:.3f}"
        say(f"d({summary['root']}, {name}) = {before}   d({summary['root']}, {summary['root']}->{name}) = {row['d(r,r->i)']:.3f}")
    if "eval" in summary:
        ev = summary["eval"]
        for name, row in ev["fid"].items():
            say(f"class {name}: FID {row[name]:.3f}  KID {ev['kid'][name][name]:.5f} (vs samples of {name})")
        say(f"union: FID {ev['fid_union']:.3f}  KID {ev['kid_union']:.5f} (references are generated samples)")
    say(f"merged -> {path} (classes: {', '.join(summary['classes'])}; ganzoo generate {path} --class {summary['classes'][0]} --out grid.png)")
    as_json.write(summary)
