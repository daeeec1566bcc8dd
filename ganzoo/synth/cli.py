"""``ganzoo synth KIND …``: writes a synthetic pretraining data set (a thin layer over
:func:`ganzoo.synth.write`). numpy and PIL are imported only when the command runs, so the
other commands start without them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console

console = Console()


def synth(
    kind: str = typer.Argument(..., help="pinknoise | primitives | primitives-s | primitives-ps"),
    n: int = typer.Option(..., "--n", help="Number of images."),
    resolution: int = typer.Option(..., "--resolution", help="Image side in pixels."),
    out: Path = typer.Option(..., "--out", help="A folder, or a FILE.zip (written only when complete)."),
    seed: int = typer.Option(0, "--seed", help="Data set seed: image i depends only on (KIND, SEED, i)."),
    workers: int = typer.Option(1, "--workers", help="Processes that render and encode (same bytes for any number)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Write synthetic pretraining images (Baek & Shim, CVPR 2022) as PNGs 00000000.png, …"""
    from ganzoo.synth import write

    started = time.perf_counter()
    path = write(kind, n, resolution, out, seed=seed, workers=workers, progress=not as_json, overwrite=overwrite)
    seconds = time.perf_counter() - started
    if as_json:
        print(json.dumps({"out": str(path), "kind": kind, "n": n, "resolution": resolution, "seed": seed,
                          "seconds": round(seconds, 2), "images_per_s": round(n / seconds, 1)}, sort_keys=True))  # fmt: skip
        return
    console.print(f"{n} {kind} images ({resolution}x{resolution}, seed {seed}) -> {path} "
                  f"in {seconds:.1f} s ({n / seconds:.0f} img/s)", soft_wrap=True, highlight=False)  # fmt: skip
