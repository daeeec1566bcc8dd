"""``ganzoo synth KIND …``: writes a synthetic pretraining data set (a thin layer over
:func:`ganzoo.synth.write`). numpy and PIL are imported only when the command runs, so the
other commands start without them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from ganzoo.cli._common import json_option, json_output, say


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)


def synth(
    kind: str = typer.Argument(..., help="pinknoise | primitives | primitives-s | primitives-ps"),
    n: int = typer.Option(..., "--n", help="Number of images."),
    resolution: int = typer.Option(..., "--resolution", help="Image side in pixels."),
    out: Path = typer.Option(..., "--out", help="A folder, or a FILE.zip (written only when complete)."),
    seed: int = typer.Option(0, "--seed", help="Data set seed: image i depends only on (KIND, SEED, i)."),
    workers: int = typer.Option(1, "--workers", help="Processes that render and encode (same bytes for any number)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
    color: Optional[str] = typer.Option(None, "--color", help="pinknoise, primitives-ps: per-channel (default, the paper's) | correlated (one field, a random two-colour ramp)."),
    shapes: Optional[str] = typer.Option(None, "--shapes", help="primitives kinds: comma-separated from line,circle,ellipse,rect,triangle,polygon (default line,circle,ellipse,rect)."),
    json_out: Optional[str] = json_option("what was written (path, settings, speed)"),
) -> None:
    """Write synthetic pretraining images (Baek & Shim, CVPR 2022) as PNGs 00000000.png, …"""
    from ganzoo.synth import check_options, write

    options = check_options(kind, color=color, shapes=shapes)  # canonical, non-default only
    as_json = json_output(json_out)
    started = time.perf_counter()
    path = write(kind, n, resolution, out, seed=seed, workers=workers, progress=not as_json.stdout, overwrite=overwrite,
                 **options)  # fmt: skip
    seconds = time.perf_counter() - started
    described = "".join(f", {name} {value if isinstance(value, str) else ','.join(value)}"
                        for name, value in options.items())  # fmt: skip
    say(f"{n} {kind} images ({resolution}x{resolution}, seed {seed}{described}) -> {path} "
        f"in {seconds:.1f} s ({n / seconds:.0f} img/s)")  # fmt: skip
    as_json.write({"out": str(path), "kind": kind, "n": n, "resolution": resolution, "seed": seed, "options": options,
                   "seconds": round(seconds, 2), "images_per_s": round(n / seconds, 1)})  # fmt: skip
