#!/usr/bin/env python
"""CPU benchmark of ganzoo's compiled path (ganzoo.compile: torch.compile, inductor).

Part 1, side by side at 256x256 (the paper config of ``scripts/bench_stylegan2.py``, same weights
in all three, ``force_fp32=True``, ``noise_mode='const'``): the StyleGAN2-ADA reference code vs
ganzoo eager vs ganzoo compiled, for

* ``G forward``: eval, ``no_grad``, batch ``--batch`` (4);
* ``train step``: G forward with grad, D on fakes and reals, first-order gradients of the
  non-saturating losses from one shared graph (``bench_stylegan2.train_step``; no R1/path
  length, which ganzoo's loop runs eagerly anyway);
* ``training phases``: Gmain + Dmain as both training loops run them, each network's parameters
  requiring grad only in its own phase (``bench_stylegan2.train_phases``).

``--malloc keep`` (the default) makes glibc keep freed memory for reuse, as ganzoo's training
loop and ``generate`` do (:mod:`ganzoo._malloc`), ``--malloc system`` leaves the C library's
defaults; either applies to every implementation in the run alike.

Compile time is reported apart from the timings: ``cold`` is the first call in an empty inductor
cache (a fresh temporary ``TORCHINDUCTOR_CACHE_DIR``), ``warm`` the first call of a fresh copy
after ``torch._dynamo.reset()`` with that cache filled (what a later process pays, without its
imports). The timed runs start after both.

Part 2, the starter scale (32x32, ``ganzoo.train.pretrain.pretrain`` and
``ganzoo.train.runner.finetune`` of the bundled StyleGAN2 starter model, in-memory random data,
``aug='none'``): img/s with 1 and 2 threads, eager (``compile=False``) vs compiled
(``compile=True``), measured over ``--train-steps`` minibatches after ``--train-warmup`` untimed
ones (the first minibatches compile); the compile-bearing first minibatches are reported as well
(from inductor's on-disk cache when part 1 or an earlier run filled it; a later run in the same
process with the same architecture reuses the graphs already in memory).

Usage (the reference is a local checkout of NVlabs/stylegan2-ada-pytorch, not part of ganzoo)::

    python scripts/bench_compile.py --reference /path/to/stylegan2-ada-pytorch [--threads 2]
        [--res 256] [--batch 4] [--repeats 5] [--skip side-by-side|starter] [--malloc keep|system] [--json OUT]

    # a smoke run of the script itself (small nets, few repeats)
    python scripts/bench_compile.py --reference DIR --quick

Timings are informational; nothing here asserts a speed. On a shared machine compare ratios
from one run, not across runs.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO_ROOT))

import bench_stylegan2 as side  # the shared setup of the side-by-side benchmark


def _set_threads(n: int) -> None:
    torch.set_num_threads(n)


def _first_call_seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def side_by_side(args) -> dict:
    from ganzoo.compile import compile_generator, compile_network

    ref_networks = side.import_reference(args.reference)
    ganzoo_sg2, _ = side.import_ganzoo()
    g_kwargs, d_kwargs = side.paper_kwargs(args.res)
    if args.quick:
        g_kwargs["synthesis_kwargs"].update(channel_base=2048, channel_max=64)
        d_kwargs.update(channel_base=2048, channel_max=64)
    torch.manual_seed(args.seed)
    ref_G = ref_networks.Generator(**copy.deepcopy(g_kwargs))
    ref_D = ref_networks.Discriminator(**copy.deepcopy(d_kwargs))
    side.perturb_(ref_G, args.seed + 1)
    side.perturb_(ref_D, args.seed + 2)
    nets: dict[str, dict[str, torch.nn.Module]] = {
        "reference": {"G": ref_G, "D": ref_D}
    }
    eager_G, eager_D = (
        ganzoo_sg2.Generator(**copy.deepcopy(g_kwargs)),
        ganzoo_sg2.Discriminator(**copy.deepcopy(d_kwargs)),
    )
    eager_G.load_state_dict(ref_G.state_dict(), strict=True)
    eager_D.load_state_dict(ref_D.state_dict(), strict=True)
    nets["ganzoo eager"] = {"G": eager_G, "D": eager_D}

    gen = torch.Generator().manual_seed(args.seed + 4)
    z = torch.randn([args.batch, g_kwargs["z_dim"]], generator=gen)
    c = torch.zeros([args.batch, 0])
    real = torch.rand([args.batch, 3, args.res, args.res], generator=gen) * 2 - 1

    def forward(n):
        n["G"].eval()
        return side.g_forward(n["G"], z, c)

    def step(n):
        n["G"].train(), n["D"].train()
        return side.train_step(n["G"], n["D"], z, c, real)

    def phases(n):
        n["G"].train(), n["D"].train()
        return side.train_phases(n["G"], n["D"], z, c, real)

    def compiled_copy() -> dict[str, torch.nn.Module]:
        G, D = copy.deepcopy(eager_G), copy.deepcopy(eager_D)
        if not (compile_generator(G) and compile_network(D)):
            sys.exit("error: torch.compile is unavailable here (see the warning above)")
        return {"G": G, "D": D}

    compile_s: dict[str, dict[str, float]] = {}
    workloads = {
        "G forward (eval, no_grad)": forward,
        "train step (G fwd + D fwd x2 + bwd)": step,
        "training phases (Gmain + Dmain)": phases,
    }
    saved_cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="bench_compile_inductor_") as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        for label, kind in (("cold", "empty cache"), ("warm", "filled cache")):
            torch._dynamo.reset()
            nets["ganzoo compiled"] = compiled_copy()
            for task, fn in workloads.items():
                seconds = _first_call_seconds(lambda fn=fn: fn(nets["ganzoo compiled"]))
                compile_s.setdefault(task, {})[label] = seconds
                print(
                    f"  first call, compiling ({kind}): {task}: {seconds:.1f} s",
                    flush=True,
                )
        # The timed runs use the warm copy (compiled graphs already in memory).
        agreement = {
            "G forward max abs (compiled vs eager)": side.max_abs(
                forward(nets["ganzoo compiled"]), forward(nets["ganzoo eager"])
            ),
        }
        times = side.run_interleaved(
            {task: {impl: (lambda n=n, fn=fn: fn(n)) for impl, n in nets.items()} for task, fn in workloads.items()},
            args.warmup, args.repeats,
        )  # fmt: skip
    if saved_cache is None:
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    else:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = saved_cache

    rows = []
    for task, by_impl in times.items():
        med = {impl: statistics.median(ts) for impl, ts in by_impl.items()}
        rows.append({
            "task": task, "median_ms": med, "all_ms": by_impl,
            "eager_over_reference": med["ganzoo eager"] / med["reference"],
            "compiled_over_reference": med["ganzoo compiled"] / med["reference"],
            "compiled_over_eager": med["ganzoo compiled"] / med["ganzoo eager"],
            "compile_s": compile_s[task],
        })  # fmt: skip
    width = max(len(r["task"]) for r in rows)
    print(f"\n{args.res}x{args.res}, batch {args.batch}, {torch.get_num_threads()} threads, median of {args.repeats}"
          + (" (--quick: small channels)" if args.quick else ""))  # fmt: skip
    print(f"{'workload':{width}s}  {'ref ms':>9s}  {'eager ms':>9s}  {'compiled ms':>11s}  {'eager/ref':>9s}  "
          f"{'compiled/ref':>12s}  {'compiled/eager':>14s}  {'compile s cold/warm':>19s}")  # fmt: skip
    for r in rows:
        m = r["median_ms"]
        cold_warm = f"{r['compile_s']['cold']:.1f} / {r['compile_s']['warm']:.1f}"
        print(f"{r['task']:{width}s}  {m['reference']:9.1f}  {m['ganzoo eager']:9.1f}  {m['ganzoo compiled']:11.1f}  "
              f"{r['eager_over_reference']:9.2f}  {r['compiled_over_reference']:12.2f}  {r['compiled_over_eager']:14.2f}  "
              f"{cold_warm:>19s}")  # fmt: skip
    for k, v in agreement.items():
        print(f"{k}: {v:.2e}")
    print("(compile s: the first call's time, which includes one run; the train step's first call also compiles "
          "the backward graphs)")  # fmt: skip
    return {
        "res": args.res,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "rows": rows,
        "agreement": agreement,
    }


# ----------------------------------------------------------------------------------------------
# Starter scale: pretrain and finetune img/s


def _starter_run(command: str, compiled: bool, args, workdir: Path) -> dict:
    from ganzoo.train.pretrain import pretrain
    from ganzoo.train.runner import finetune

    images = (
        torch.rand([256, 3, 32, 32], generator=torch.Generator().manual_seed(0)) * 255
    ).to(torch.uint8)
    marks: list[float] = []

    def callback(trainer, stats) -> None:
        marks.append(time.perf_counter())

    total = args.train_warmup + args.train_steps
    common = {"aug": "none", "batch": args.train_batch, "kimg": total * args.train_batch / 1000, "progress": False,
              "callback": callback, "compile": compiled, "snap": 1e9}  # fmt: skip
    out = (
        workdir
        / f"{command}-{'compiled' if compiled else 'eager'}-{torch.get_num_threads()}t"
    )
    start = time.perf_counter()
    if command == "pretrain":
        pretrain(images, out, resolution=32, **common)
    else:
        finetune(args.source, images, out, recipe="full", **common)
    recorded = json.loads((out / "run.json").read_text(encoding="utf-8"))[
        "options"
    ].get("compile")
    if recorded is not compiled:
        sys.exit(f"error: {command} ran with compile={recorded}, asked {compiled}")
    first = (
        marks[args.train_warmup - 1] - start
    )  # setup + the first minibatches (compilation)
    steady = (marks[-1] - marks[args.train_warmup - 1]) / (
        len(marks) - args.train_warmup
    )
    return {"img_per_s": args.train_batch / steady, "s_per_minibatch": steady, "first_minibatches_s": first,
            "minibatches": len(marks)}  # fmt: skip


def starter(args) -> dict:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_compile_runs_") as tmp:
        for threads in args.starter_threads:
            _set_threads(threads)
            for command in ("finetune", "pretrain"):
                for compiled in (False, True):
                    r = _starter_run(command, compiled, args, Path(tmp))
                    key = f"{command}, {threads} thread(s), {'compiled' if compiled else 'eager'}"
                    results[key] = r
                    print(f"  {key}: {r['img_per_s']:.1f} img/s (first {args.train_warmup} minibatches incl. setup: "
                          f"{r['first_minibatches_s']:.1f} s)", flush=True)  # fmt: skip
    print(
        f"\nstarter scale, 32x32, batch {args.train_batch}, aug none, steady state over {args.train_steps} minibatches"
    )
    print(f"{'command':10s} {'threads':>7s} {'eager img/s':>12s} {'compiled img/s':>15s} {'compiled/eager':>15s} "
          f"{'first minibatches s (eager / compiled)':>40s}")  # fmt: skip
    for threads in args.starter_threads:
        for command in ("finetune", "pretrain"):
            e, c = (
                results[f"{command}, {threads} thread(s), {m}"]
                for m in ("eager", "compiled")
            )
            print(f"{command:10s} {threads:7d} {e['img_per_s']:12.1f} {c['img_per_s']:15.1f} "
                  f"{c['img_per_s'] / e['img_per_s']:15.2f} {e['first_minibatches_s']:19.1f} / {c['first_minibatches_s']:.1f}")  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--reference",
        help="stylegan2-ada-pytorch checkout (needed for the side-by-side part)",
    )
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument(
        "--threads",
        type=int,
        default=2,
        help="threads of the side-by-side part (default 2)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--starter-threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--source",
        default="primitives-ps-stylegan2-32",
        help="finetune's source (a bundled starter model)",
    )
    ap.add_argument("--train-batch", type=int, default=16)
    ap.add_argument(
        "--train-warmup",
        type=int,
        default=4,
        help="untimed minibatches (they compile) (default 4)",
    )
    ap.add_argument(
        "--train-steps",
        type=int,
        default=32,
        help="timed minibatches (default 32: two R1 cycles)",
    )
    ap.add_argument(
        "--skip", nargs="*", default=[], choices=["side-by-side", "starter"]
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke preset: --res 32 --repeats 2, small channels, short runs",
    )
    ap.add_argument(
        "--malloc",
        choices=["keep", "system"],
        default="keep",
        help="keep: glibc keeps freed memory for reuse, as ganzoo's training and generate do (default); "
        "system: the C library's defaults. Applies to every implementation in the run alike.",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.quick:
        args.res, args.repeats, args.warmup = min(args.res, 32), 2, 1
        args.train_warmup, args.train_steps, args.train_batch = 2, 4, 8
        args.starter_threads = args.starter_threads[:1]
    malloc = side.set_malloc(args.malloc)
    print(f"malloc: {malloc}", flush=True)
    results: dict[str, Any] = {"torch": torch.__version__, "machine": platform.machine(), "malloc": malloc, "args": {
        k: str(v) for k, v in vars(args).items()}}  # fmt: skip
    if "side-by-side" not in args.skip:
        if not args.reference:
            sys.exit(
                "error: --reference DIR is needed for the side-by-side part (or --skip side-by-side)"
            )
        _set_threads(args.threads)
        print(
            f"torch {torch.__version__}, threads={torch.get_num_threads()}", flush=True
        )
        results["side_by_side"] = side_by_side(args)
    if "starter" not in args.skip:
        results["starter"] = starter(args)
    if args.json:
        args.json.write_text(
            json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8"
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
