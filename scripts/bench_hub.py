#!/usr/bin/env python
"""Benchmarks of the registry and Hub paths: `ganzoo list`/`info` start-up, and cached pulls.

1. ``ganzoo list`` and ``ganzoo info NAME`` as a user runs them (a fresh process each time):
   median wall time and CPU time over ``--repeats`` runs.
2. The overhead of a pull of an already-cached checkpoint: a StyleGAN2 of the paper256 size
   (G_ema + D, random weights) is mirrored with ``ganzoo mirror``, served by a real olah server on
   loopback, pulled once; then ``ganzoo.load(REPO)`` (pull: revision check + sha256 of every
   file, then load) is timed against ``GAN.load(snapshot_dir, verify=False)`` (reading the same
   files), online and with ``HF_HUB_OFFLINE=1``.

Usage: ``python scripts/bench_hub.py [--repeats 10] [--resolution 256]`` (needs olah: the dev extra).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cli_times(args: list[str], repeats: int) -> tuple[float, float]:
    """Median wall and CPU (user+sys of the child) seconds of ``ganzoo ARGS`` in fresh processes."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = os.times()
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ganzoo", *args], check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = os.times()
        cpus.append((after.children_user - before.children_user) + (after.children_system - before.children_system))
    return statistics.median(walls), statistics.median(cpus)


def _timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--resolution", type=int, default=256)
    args = parser.parse_args()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    wall, cpu = _cli_times(["list"], args.repeats)
    print(f"ganzoo list            median wall {wall:.3f} s, cpu {cpu:.3f} s ({args.repeats} fresh processes)")
    wall, cpu = _cli_times(["info", "imagenet-stylegan2-256"], args.repeats)
    print(f"ganzoo info NAME       median wall {wall:.3f} s, cpu {cpu:.3f} s")

    import torch

    import ganzoo
    from ganzoo import hub
    from ganzoo.checkpoint import GAN
    from ganzoo.models.stylegan2 import Discriminator, Generator

    sys.path.insert(0, str(ROOT / "tests"))  # reuse the tests' olah launcher rather than a copy
    from olah_server import OlahServer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        kwargs = dict(channel_base=16384, channel_max=512, num_fp16_res=4, conv_clamp=256)  # paper256 config
        G = Generator(512, 0, 512, args.resolution, 3, mapping_kwargs=dict(num_layers=8), synthesis_kwargs=kwargs)
        D = Discriminator(0, args.resolution, 3, **kwargs)
        checkpoint = GAN(G.eval(), None, D.eval(), config={"license": "mit"}).save(tmp / "bench-gan")
        size = sum(p.stat().st_size for p in checkpoint.iterdir())
        server = OlahServer(tmp / "olah")
        hub.mirror([str(checkpoint)], server.mirrors, org="bench")
        server.start()
        os.environ.update(HF_ENDPOINT=server.url, HF_HOME=str(tmp / "hf"), GANZOO_CACHE=str(tmp / "gz"),
                          HF_HUB_DISABLE_PROGRESS_BARS="1")  # fmt: skip
        try:
            start = time.perf_counter()
            snapshot = hub.pull("bench/bench-gan", progress=False)
            print(f"first pull (download)  {time.perf_counter() - start:.3f} s for {size / 1e6:.1f} MB")
            read = _timed(lambda: GAN.load(snapshot, verify=False), args.repeats)
            online = _timed(lambda: ganzoo.load("bench/bench-gan"), args.repeats)
            os.environ["HF_HUB_OFFLINE"] = "1"
            offline = _timed(lambda: ganzoo.load("bench/bench-gan"), args.repeats)
            pull_only = _timed(lambda: hub.pull("bench/bench-gan", progress=False), args.repeats)
        finally:
            server.stop()
    print(f"read files (GAN.load)  median {read:.3f} s")
    print(f"ganzoo.load(repo)      median {online:.3f} s online (+{online - read:.3f} s), {offline:.3f} s offline "
          f"(+{offline - read:.3f} s); pull alone offline {pull_only:.3f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
