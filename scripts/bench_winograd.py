#!/usr/bin/env python
"""CPU benchmark of the Winograd F(4x4, 3x3) convolution of ganzoo's compiled path.

Under ``torch.compile`` on CPU, :func:`ganzoo.ops.conv2d_resample` hands wide stride-1 3x3
convolutions to :func:`ganzoo.ops.winograd_conv3x3` (the rule is ``ops._winograd_pays``). This
script shows where that pays, side by side in one process:

* ``layers``: for each ``--shapes`` entry ``CHANNELSxSIDE`` (a square ``[batch, C, S, S]`` input,
  a ``[C, C, 3, 3]`` kernel, channels-last from side 64 on as in the networks), both compiled
  with inductor: the direct convolution (``F.conv2d``) vs the Winograd one, forward without
  grad and forward + backward (gradients of input and kernel), median ms of ``--repeats``,
  and each one's max abs error against a float64 direct convolution (unit-variance data,
  kernels of unit output gain);
* ``network``: the compiled 256x256 paper-config StyleGAN2 of ``scripts/bench_stylegan2.py``
  (``G forward`` in eval without grad, and the Gmain + Dmain ``training phases``), with the
  rule as shipped and with Winograd switched off, each in a worker process of its own, timed in
  interleaved rounds; the max abs difference of the two G outputs is printed too.

``--malloc keep`` (the default) keeps freed memory in the process as ganzoo's CPU training
and ``generate`` do; ``--malloc system`` leaves glibc's defaults.

Usage::

    python scripts/bench_winograd.py [--threads 2] [--repeats 5] [--batch 4]
        [--shapes 512x16 512x32 256x64 ...] [--skip layers|network] [--malloc keep|system] [--json OUT]

Timings are informational; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_stylegan2 as side  # the shared network setup

from ganzoo import ops
from ganzoo.compile import compile_generator, compile_network

DEFAULT_SHAPES = ["512x16", "512x32", "256x32", "256x64", "512x64", "128x128", "256x128", "64x256"]


def _direct(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, w, padding=1)


def _layer_tasks(variants: dict[str, Callable], x: torch.Tensor, w: torch.Tensor,
                 upstream: torch.Tensor) -> dict[str, dict[str, Callable[[], Any]]]:  # fmt: skip
    """``{"fwd" | "fwd+bwd": {variant: call}}`` for one input and kernel."""
    xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()

    def forward(conv: Callable) -> Callable[[], Any]:
        def run() -> Any:
            with torch.no_grad():
                return conv(x, w)

        return run

    def forward_backward(conv: Callable) -> Callable[[], Any]:
        return lambda: conv(xg, wg).backward(upstream)

    return {
        "fwd": {name: forward(conv) for name, conv in variants.items()},
        "fwd+bwd": {name: forward_backward(conv) for name, conv in variants.items()},
    }


def layers(args) -> list[dict]:
    variants = {
        "direct": torch.compile(_direct, dynamic=False),
        "winograd": torch.compile(ops.winograd_conv3x3, dynamic=False),
    }
    rows = []
    for spec in args.shapes:
        torch._dynamo.reset()  # fresh graphs per shape (dynamo's recompile limit is 8 per function)
        channels, size = (int(v) for v in spec.lower().split("x"))
        torch.manual_seed(0)
        x = torch.randn(args.batch, channels, size, size)
        if size >= 64:
            x = x.contiguous(memory_format=torch.channels_last)
        w = torch.randn(channels, channels, 3, 3) / (3 * channels**0.5)
        exact = F.conv2d(x.double(), w.double(), padding=1)
        tasks = _layer_tasks(variants, x, w, upstream=torch.ones(exact.shape) / exact.numel() ** 0.5)
        # Two warm-up calls: the first compiles, the second settles the allocator.
        times = side.run_interleaved(tasks, warmup=2, repeats=args.repeats)
        row: dict[str, Any] = {"shape": spec}
        with torch.no_grad():
            for name, conv in variants.items():
                row[f"{name} error"] = side.max_abs(conv(x, w), exact)
        for part, per in times.items():
            for name, ms in per.items():
                row[f"{name} {part} ms"] = statistics.median(ms)
            row[f"{part} ratio"] = row[f"winograd {part} ms"] / row[f"direct {part} ms"]
        rows.append(row)
        print(
            f"  {spec:>8}: fwd {row['direct fwd ms']:.1f} -> {row['winograd fwd ms']:.1f} ms "
            f"({row['fwd ratio']:.2f}), fwd+bwd {row['direct fwd+bwd ms']:.1f} -> "
            f"{row['winograd fwd+bwd ms']:.1f} ms ({row['fwd+bwd ratio']:.2f}), max abs error "
            f"{row['direct error']:.1e} / {row['winograd error']:.1e}",
            flush=True,
        )
    return rows


def _network_worker(conn, use_winograd: bool, threads: int, malloc: str, batch: int) -> None:
    """One variant of the 256² network in a process of its own: dynamo caches graphs per code
    object, so two copies of one network in one process would share the graphs of whichever
    was traced first. Runs the requested task and answers None (``"output"``: the G images)."""
    torch.set_num_threads(threads)
    side.set_malloc(malloc)
    if not use_winograd:
        ops._winograd_pays = lambda *args: False
    sg2, _ = side.import_ganzoo()
    g_kwargs, d_kwargs = side.paper_kwargs(256)
    torch.manual_seed(0)
    G, D = sg2.Generator(**copy.deepcopy(g_kwargs)), sg2.Discriminator(**copy.deepcopy(d_kwargs))
    side.perturb_(G, 1)
    side.perturb_(D, 2)
    z, c = torch.randn(batch, G.z_dim), torch.zeros(batch, 0)
    reals = torch.rand(batch, 3, 256, 256) * 2 - 1
    compile_generator(G)
    compile_network(D)

    def forward() -> torch.Tensor:
        G.eval()
        return side.g_forward(G, z, c)

    def phases() -> Any:
        G.train(), D.train()
        return side.train_phases(G, D, z, c, reals)

    tasks = {"G forward (eval, no_grad)": forward, "training phases (Gmain + Dmain)": phases}
    while True:
        request = conn.recv()
        if request is None:
            return
        if request == "output":
            conn.send(forward())
        else:
            tasks[request]()
            conn.send(None)


def network(args) -> dict:
    """The 256² paper config compiled with the shipped rule and with Winograd off, each in a
    worker process, timed from here (a request and its answer through a pipe) in interleaved
    rounds after a compiling and a warm-up call."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    workers = {}
    for variant in ("winograd", "direct"):
        parent, child = context.Pipe()
        process = context.Process(target=_network_worker, daemon=True,
                                  args=(child, variant == "winograd", args.threads, args.malloc, args.batch))  # fmt: skip
        process.start()
        workers[variant] = (parent, process)

    def ask(variant: str, request: str) -> Any:
        conn = workers[variant][0]
        conn.send(request)
        return conn.recv()

    def asking(variant: str, task: str) -> Callable[[], Any]:
        return lambda: ask(variant, task)

    names = ["G forward (eval, no_grad)", "training phases (Gmain + Dmain)"]
    for task in names:
        for variant in workers:
            first = side.timed(asking(variant, task))
            print(f"  {task} / {variant}: first call (compiles) {first / 1000:.1f} s", flush=True)
    outputs = {variant: ask(variant, "output") for variant in workers}
    result: dict[str, Any] = {"G output max abs (winograd vs direct)": side.max_abs(*outputs.values())}
    tasks = {task: {variant: asking(variant, task) for variant in workers} for task in names}
    times = side.run_interleaved(tasks, warmup=1, repeats=args.repeats)
    for conn, process in workers.values():
        conn.send(None)
        process.join()
    for task, per in times.items():
        medians = {v: statistics.median(ms) for v, ms in per.items()}
        result[task] = {**{f"{v} ms": m for v, m in medians.items()}, "ratio": medians["winograd"] / medians["direct"]}
        print(f"  {task}: direct {medians['direct']:.0f} ms, winograd {medians['winograd']:.0f} ms "
              f"({result[task]['ratio']:.2f})", flush=True)  # fmt: skip
    print(f"  G output max abs, winograd vs direct: {result['G output max abs (winograd vs direct)']:.1e}")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES, metavar="CxS")
    ap.add_argument("--skip", choices=["layers", "network"], action="append", default=[])
    ap.add_argument("--malloc", choices=["keep", "system"], default="keep")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    malloc = side.set_malloc(args.malloc)
    print(f"torch {torch.__version__}, {platform.machine()}, threads={args.threads}, batch {args.batch}, "
          f"malloc: {malloc}", flush=True)  # fmt: skip
    report: dict[str, Any] = {"torch": torch.__version__, "threads": args.threads, "malloc": malloc}
    if "layers" not in args.skip:
        print("layers (compiled): direct -> winograd, ratio winograd / direct", flush=True)
        report["layers"] = layers(args)
    if "network" not in args.skip:
        print("network (compiled, 256x256 paper config): winograd / direct", flush=True)
        report["network"] = network(args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
