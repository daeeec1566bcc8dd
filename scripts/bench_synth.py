"""Images per second of the synthetic data generators (ganzoo.synth), per kind and worker count.

Two figures per row: ``render`` is the generator alone (uint8 arrays, what a training stream
costs; workers are warm spawned processes), ``write`` is ``ganzoo synth`` end to end (rendering,
PNG encoding and writing a zip, worker start-up included).

    python scripts/bench_synth.py [--resolution 256] [--images 256] [--workers 1 2] [--kinds ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from ganzoo import synth

_CHUNK = 16


def _render_count(kind: str, start: int, stop: int, resolution: int) -> int:
    return len(synth.render(kind, range(start, stop), resolution))


def render_rate(kind: str, resolution: int, images: int, workers: int) -> float:
    """Steady-state images/s of :func:`ganzoo.synth.render` on ``workers`` processes."""
    bounds = [(start, min(start + _CHUNK, images)) for start in range(0, images, _CHUNK)]
    if workers == 1:
        _render_count(kind, 0, 2, resolution)  # warm-up (filter axes, phase table)
        started = time.perf_counter()
        for start, stop in bounds:
            _render_count(kind, start, stop, resolution)
        return images / (time.perf_counter() - started)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        list(pool.map(_render_count, [kind] * workers, [0] * workers, [2] * workers, [resolution] * workers))
        started = time.perf_counter()
        done = sum(pool.map(_render_count, *zip(*[(kind, a, b, resolution) for a, b in bounds])))
        return done / (time.perf_counter() - started)


def write_rate(kind: str, resolution: int, images: int, workers: int) -> float:
    """End-to-end images/s of :func:`ganzoo.synth.write` to a zip (worker start-up included)."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        synth.write(kind, images, resolution, Path(tmp) / "bench.zip", workers=workers, progress=False)
        return images / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--images", type=int, default=256, help="images per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--kinds", nargs="+", default=list(synth.KINDS), choices=synth.KINDS)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    rows = []
    for kind in args.kinds:
        for workers in args.workers:
            rows.append({"kind": kind, "workers": workers, "resolution": args.resolution,
                         "render_img_per_s": round(render_rate(kind, args.resolution, args.images, workers), 1),
                         "write_img_per_s": round(write_rate(kind, args.resolution, args.images, workers), 1)})  # fmt: skip
    machine = {"cpus": len(os.sched_getaffinity(0)), "load_average": [round(x, 2) for x in os.getloadavg()],
               "python": platform.python_version(), "images": args.images}  # fmt: skip
    if args.json:
        print(json.dumps({"machine": machine, "results": rows}, indent=2))
        return
    print(f"{machine['cpus']} CPUs, load average {machine['load_average']}, {args.images} images per figure")
    print(f"{'kind':<15}{'workers':>8}{'render img/s':>14}{'write img/s':>13}")
    for row in rows:
        print(f"{row['kind']:<15}{row['workers']:>8}{row['render_img_per_s']:>14.1f}{row['write_img_per_s']:>13.1f}")


if __name__ == "__main__":
    main()
