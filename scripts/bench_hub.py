#!/usr/bin/env python
"""Benchmarks of the registry and Hub paths: `ganzoo list`/`info` start-up, and cached pulls.

1. ``ganzoo list`` and ``ganzoo info NAME`` as a user runs them (a fresh process each time):
   median wall time and CPU time over ``--repeats`` runs.
2. The overhead of a pull of an already-cached checkpoint: a StyleGAN2 of the paper256 size
   (G_ema + D, random weights) is mirrored with ``ganzoo mirror``, served by a real olah server on
   loopback, pulled once; then ``ganzoo.load(REPO)`` (pull: revision check + sha256 of every
   file, then load) is timed against ``GAN.load(snapshot_dir, verify=False)`` (reading the same
   files), online and with ``HF_HUB_OFFLINE=1``.
3. Offline use with the Hub unreachable: ``ganzoo rank --target DIR --feature-extractor pixels``
   over the whole registry (a 100-image ``synth primitives`` target at 32 px), in fresh processes,
   with ``HF_HUB_OFFLINE=1`` and with ``HF_ENDPOINT`` at an endpoint that cannot be reached: a
   closed loopback port (connection refused), an unresolvable host (``.invalid``), and a blackhole
   (a loopback socket that accepts and never answers: a timeout). First runs on empty caches
   (sampling every bundled model: the README's first ``ganzoo rank``), offline and blackhole;
   then runs on the filled feature cache, all cases interleaved, where the fixed cost of the
   check weighs most. The rankings must be identical; the ratio to the ``HF_HUB_OFFLINE=1`` time
   is printed (the goal: at most ~1.5).

Usage: ``python scripts/bench_hub.py [--repeats 10] [--resolution 256] [--only startup|pull|offline]
[--rank-repeats 3] [--num-gen 1000]`` (the pull part needs olah: the dev extra).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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


class _Blackhole:
    """A loopback socket that accepts connections and never answers (clients time out)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepts = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepts += 1
            self.held.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def bench_offline(rank_repeats: int, num_gen: int) -> None:
    """Part 3: ``ganzoo rank`` over the registry, HF_HUB_OFFLINE=1 against unreachable endpoints."""
    ganzoo = [sys.executable, "-m", "ganzoo"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        base.update(GANZOO_CACHE=str(tmp / "ganzoo"), HF_HOME=str(tmp / "hf"), HF_HUB_DISABLE_PROGRESS_BARS="1")
        target = tmp / "mydata"
        subprocess.run(ganzoo + ["synth", "primitives", "--n", "100", "--resolution", "32", "--out", str(target)],
                       check=True, capture_output=True, env=base)  # fmt: skip
        rank = ganzoo + ["rank", "--target", str(target), "--feature-extractor", "pixels", "--num-gen", str(num_gen)]
        blackhole = _Blackhole()
        first, first_cpu = {}, {}
        for name, extra in (("HF_HUB_OFFLINE=1", {"HF_HUB_OFFLINE": "1"}), ("blackhole", {"HF_ENDPOINT": blackhole.url,
                            "GANZOO_CACHE": str(tmp / "ganzoo-cold"), "HF_HOME": str(tmp / "hf-cold")})):  # fmt: skip
            before, start = os.times(), time.perf_counter()
            subprocess.run(rank, check=True, capture_output=True, env={**base, **extra})
            first[name] = time.perf_counter() - start
            after = os.times()
            first_cpu[name] = after.children_user - before.children_user + after.children_system - before.children_system
        print(f"rank, first run on empty caches (N={num_gen} samples of each bundled model): "
              f"HF_HUB_OFFLINE=1 {first['HF_HUB_OFFLINE=1']:.1f} s wall ({first_cpu['HF_HUB_OFFLINE=1']:.1f} s CPU), "
              f"blackhole {first['blackhole']:.1f} s wall ({first_cpu['blackhole']:.1f} s CPU): "
              f"x{first['blackhole'] / first['HF_HUB_OFFLINE=1']:.2f} wall (a shared machine's load moves it)")  # fmt: skip
        accepts_before = blackhole.accepts
        cases = {
            "HF_HUB_OFFLINE=1": {"HF_HUB_OFFLINE": "1"},
            "refused (closed port)": {"HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"},
            "unresolvable host": {"HF_ENDPOINT": "http://hub.ganzoo.invalid"},
            "blackhole (no answer)": {"HF_ENDPOINT": blackhole.url},
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        rankings: dict[str, list] = {}
        notes: dict[str, set[str]] = {}
        try:
            for repeat in range(rank_repeats):  # cases interleaved: load changes hit them alike
                for name, extra in cases.items():
                    out = tmp / f"rank-{len(rankings)}-{repeat}.json"
                    start = time.perf_counter()
                    run = subprocess.run(rank + ["--json", str(out)], capture_output=True, text=True, env={**base, **extra})
                    times[name].append(time.perf_counter() - start)
                    if run.returncode != 0:
                        raise SystemExit(f"{name}: ganzoo rank failed: {run.stderr.strip()}")
                    result = json.loads(out.read_text())
                    rankings.setdefault(name, [(c["name"], c.get("fid")) for c in result["candidates"]])
                    notes.setdefault(name, {line for line in run.stderr.splitlines() if "unreachable" in line})
        finally:
            blackhole.close()
        reference = statistics.median(times["HF_HUB_OFFLINE=1"])
        for name, values in times.items():
            median = statistics.median(values)
            same = "same ranking" if rankings[name] == rankings["HF_HUB_OFFLINE=1"] else "DIFFERENT RANKING"
            print(f"rank offline, {name:<22} median {median:6.2f} s (x{median / reference:.2f}), {same}, "
                  f"runs {', '.join(f'{v:.2f}' for v in values)}")  # fmt: skip
            for line in sorted(notes[name]):
                print(f"    {line}")
        print(f"blackhole: {blackhole.accepts - accepts_before} connections over {rank_repeats} processes "
              f"(candidates scored: {len(rankings['HF_HUB_OFFLINE=1'])})")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--only", choices=["startup", "pull", "offline"], help="run one part only")
    parser.add_argument("--rank-repeats", type=int, default=3, help="fresh rank processes per case (part 3)")
    parser.add_argument("--num-gen", type=int, default=1000, help="samples per candidate of part 3's first run")
    args = parser.parse_args()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    if args.only in (None, "startup"):
        _startup(args.repeats)
    if args.only in (None, "pull"):
        _pull(args.repeats, args.resolution)
    if args.only in (None, "offline"):
        bench_offline(args.rank_repeats, args.num_gen)
    return 0


def _startup(repeats: int) -> None:
    wall, cpu = _cli_times(["list"], repeats)
    print(f"ganzoo list            median wall {wall:.3f} s, cpu {cpu:.3f} s ({repeats} fresh processes)")
    wall, cpu = _cli_times(["info", "imagenet-stylegan2-256"], repeats)
    print(f"ganzoo info NAME       median wall {wall:.3f} s, cpu {cpu:.3f} s")


def _pull(repeats: int, resolution: int) -> None:
    import torch

    import ganzoo
    from ganzoo import hub
    from ganzoo.checkpoint import GAN
    from ganzoo.architectures.stylegan2.networks import Discriminator, Generator

    sys.path.insert(0, str(ROOT / "tests"))  # reuse the tests' olah launcher rather than a copy
    from olah_server import OlahServer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        kwargs = dict(channel_base=16384, channel_max=512, num_fp16_res=4, conv_clamp=256)  # paper256 config
        G = Generator(512, 0, 512, resolution, 3, mapping_kwargs=dict(num_layers=8), synthesis_kwargs=kwargs)
        D = Discriminator(0, resolution, 3, **kwargs)
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
            read = _timed(lambda: GAN.load(snapshot, verify=False), repeats)
            online = _timed(lambda: ganzoo.load("bench/bench-gan"), repeats)
            os.environ["HF_HUB_OFFLINE"] = "1"
            offline = _timed(lambda: ganzoo.load("bench/bench-gan"), repeats)
            pull_only = _timed(lambda: hub.pull("bench/bench-gan", progress=False), repeats)
        finally:
            server.stop()
    print(f"read files (GAN.load)  median {read:.3f} s")
    print(f"ganzoo.load(repo)      median {online:.3f} s online (+{online - read:.3f} s), {offline:.3f} s offline "
          f"(+{offline - read:.3f} s); pull alone offline {pull_only:.3f} s")  # fmt: skip


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
