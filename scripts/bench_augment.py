#!/usr/bin/env python
"""CPU benchmark of ADA's augmentation pipeline: ganzoo vs a git baseline vs the StyleGAN2-ADA reference.

Images per second of :class:`ganzoo.train.augment.AugmentPipe` (float32, CPU) for each config:
a preset (``bgc``; ``bgcfnc`` adds image filtering, noise and cutout), a probability ``p`` (0.6,
training-like: a share of the samples skip each stage; 1.0: every transform on every sample), a
size (32x32 batch 32, 256x256 batch 8), and a mode: ``fwd`` (``torch.no_grad``) or ``fwd+bwd``
(forward with grad, then backward of ``sum(out * w)`` to the images, as in D's passes).

Candidates, timed side by side in one process:

* ``ganzoo``: the working tree's ``AugmentPipe.from_preset(preset)``, called as
  ``pipe(images, generator=g)`` with a seeded ``torch.Generator``;
* ``baseline`` (``--baseline-rev REV``): ``ganzoo/train/augment.py`` as it was at git revision REV
  (``git show REV:...``), loaded into a module of its own (it imports the current ``ganzoo.ops``
  and ``ganzoo.errors``), so the code before and after a change runs in one process;
* ``reference`` (``--reference PATH``): NVlabs stylegan2-ada-pytorch's ``training.augment.AugmentPipe``
  imported from a local checkout at PATH (the directory that holds ``training/augment.py``;
  not part of ganzoo, never shipped with it), built with the preset's transform strengths as
  constructor arguments (every other argument at its default, which ganzoo's defaults match) and
  ``p`` set alike; it draws from the global RNG, seeded the same way.

Timing: every candidate is warmed up (``--warmup`` calls), then each timed sample runs as many
calls as fill about ``--sample-s`` seconds (calibrated per candidate on its fastest warm-up
call; the random stream is re-seeded
at the start of every sample, so each sample does the same work); ``--repeats`` samples per
candidate with the candidates interleaved (order alternating between rounds); img/s is the
median. The table shows img/s, the spread of the samples ((max - min) / median), and
ganzoo's img/s divided by the candidate's (above 1: ganzoo is faster).

Usage::

    python scripts/bench_augment.py [--reference /path/to/stylegan2-ada-pytorch] [--baseline-rev HEAD]
        [--presets bgc bgcfnc] [--ps 0.6 1.0] [--sizes 32x32 256x8] [--modes fwd fwd+bwd]
        [--repeats 5] [--sample-s 0.25] [--threads 2] [--malloc keep|system] [--json OUT]

    # a smoke run in a few seconds (checks that every candidate runs)
    python scripts/bench_augment.py --quick --reference /path/to/stylegan2-ada-pytorch --baseline-rev HEAD

A checkout can be exported from a bare mirror with
``git --git-dir=MIRROR archive HEAD | tar -x -C DIR``. On a shared machine the timings move with
the load: compare ratios from one run, not across runs. Timings are informational; nothing here
asserts a speed.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from ganzoo.train import augment as ganzoo_augment  # noqa: E402

AUGMENT_PATH = "ganzoo/train/augment.py"
SEED = 0


# ----------------------------------------------------------------------------------------------
# Candidates: each one is ``make(preset, p) -> run(images, reseed)``


def _ganzoo_maker(module: Any) -> Callable[[str, float], Callable]:
    """Pipelines of a ganzoo augment module (the working tree's or a baseline's)."""

    def make(preset: str, p: float) -> Callable:
        if hasattr(module.AugmentPipe, "from_preset"):
            pipe = module.AugmentPipe.from_preset(preset)
        else:
            pipe = module.AugmentPipe(**module.PRESETS[preset])
        pipe.p.fill_(p)
        generator = torch.Generator()

        def run(images: torch.Tensor, reseed: bool) -> torch.Tensor:
            if reseed:
                generator.manual_seed(SEED)
            return pipe(images, generator=generator)

        return run

    return make


def load_baseline(rev: str) -> tuple[Any, str]:
    """``ganzoo/train/augment.py`` at git revision ``rev``, as a module of its own; returns it
    and the revision's short hash."""
    try:
        short = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", f"{rev}^{{commit}}"],
                               check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
        source = subprocess.run(["git", "-C", str(REPO_ROOT), "show", f"{rev}:{AUGMENT_PATH}"],
                                check=True, capture_output=True, text=True).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        sys.exit(f"error: --baseline-rev {rev}: cannot read {AUGMENT_PATH} there: {detail}")
    name = f"_bench_augment_baseline_{short}"
    spec = importlib.util.spec_from_loader(name, loader=None, origin=f"{rev}:{AUGMENT_PATH}")
    module = importlib.util.module_from_spec(spec)
    module.__file__ = f"<git {short}:{AUGMENT_PATH}>"
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - this repository's own code
    return module, short


def import_reference(path: str) -> Any:
    """``training.augment`` of the reference checkout at ``path`` (pure-PyTorch paths on CPU)."""
    from reference_code import import_checkout  # scripts/reference_code.py

    return import_checkout(path, "training.augment")


def _reference_maker(module: Any) -> Callable[[str, float], Callable]:
    def make(preset: str, p: float) -> Callable:
        pipe = module.AugmentPipe(**ganzoo_augment.PRESETS[preset])
        pipe.p.copy_(torch.tensor(p))

        def run(images: torch.Tensor, reseed: bool) -> torch.Tensor:
            if reseed:
                torch.manual_seed(SEED)
            return pipe(images)

        return run

    return make


# ----------------------------------------------------------------------------------------------
# Timing


def _workload(run: Callable, mode: str, images: torch.Tensor, weights: torch.Tensor) -> Callable[[bool], None]:
    """One call of the pipeline in ``mode``; the argument says whether to re-seed first."""
    if mode == "fwd":

        def forward(reseed: bool) -> None:
            with torch.no_grad():
                run(images, reseed)

        return forward
    leaf = images.clone().requires_grad_(True)

    def forward_backward(reseed: bool) -> None:
        leaf.grad = None
        out = run(leaf, reseed)
        (out * weights).sum().backward()

    return forward_backward


def _sample(call: Callable[[bool], None], calls: int) -> float:
    """Seconds for ``calls`` calls, the random stream re-seeded at the first."""
    gc.collect()
    started = time.perf_counter()
    for i in range(calls):
        call(i == 0)
    return time.perf_counter() - started


def time_config(calls_by_name: dict[str, Callable[[bool], None]], batch: int, args) -> dict[str, dict]:
    """Warm-up and calibration, then ``args.repeats`` interleaved rounds; img/s per candidate."""
    counts = {}
    for name, call in calls_by_name.items():
        one = min(_sample(call, 1) for _ in range(max(args.warmup, 1)))  # the fastest warm-up call
        counts[name] = max(1, round(args.sample_s / max(one, 1e-6)))
    rates: dict[str, list[float]] = {name: [] for name in calls_by_name}
    order = list(calls_by_name)
    for r in range(args.repeats):
        for name in order if r % 2 == 0 else reversed(order):
            rates[name].append(batch * counts[name] / _sample(calls_by_name[name], counts[name]))
    out = {}
    for name, xs in rates.items():
        median = statistics.median(xs)
        out[name] = {"img_per_s": median, "spread": (max(xs) - min(xs)) / median, "calls_per_sample": counts[name],
                     "samples_img_per_s": xs}  # fmt: skip
    return out


# ----------------------------------------------------------------------------------------------
# Main


def _size(text: str) -> tuple[int, int]:
    res, batch = (int(v) for v in text.lower().split("x"))
    return res, batch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", metavar="PATH", help="stylegan2-ada-pytorch checkout (holds training/augment.py)")
    ap.add_argument("--baseline-rev", metavar="REV", help="also time ganzoo/train/augment.py as of this git revision")
    ap.add_argument("--presets", nargs="+", default=["bgc", "bgcfnc"], choices=list(ganzoo_augment.PRESETS))
    ap.add_argument("--ps", nargs="+", type=float, default=[0.6, 1.0], help="augmentation probabilities")
    ap.add_argument("--sizes", nargs="+", type=_size, default=[(32, 32), (256, 8)], metavar="RESxBATCH",
                    help="image side x batch size (default 32x32 256x8)")  # fmt: skip
    ap.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    ap.add_argument("--repeats", type=int, default=5, help="timed samples per candidate; the median is reported")
    ap.add_argument("--warmup", type=int, default=1, help="untimed calls per candidate and config (default 1)")
    ap.add_argument("--sample-s", type=float, default=0.25, help="seconds a timed sample aims at (default 0.25)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--malloc", choices=["keep", "system"], default="keep",
                    help="keep: glibc keeps freed memory, as ganzoo's CPU training does (default); "
                         "system: glibc's defaults")  # fmt: skip
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: --repeats 2 --sample-s 0.01 --sizes 32x4 (explicit values still win)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.quick:
        words = argv if argv is not None else sys.argv[1:]

        def given(flag: str) -> bool:
            return any(word == flag or word.startswith(flag + "=") for word in words)

        for flag, value in (("--repeats", 2), ("--sample-s", 0.01), ("--sizes", [(32, 4)])):
            if not given(flag):
                setattr(args, flag[2:].replace("-", "_"), value)

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass
    import bench_stylegan2 as side  # the shared allocator setting

    malloc = side.set_malloc(args.malloc)

    makers: dict[str, Callable[[str, float], Callable]] = {"ganzoo": _ganzoo_maker(ganzoo_augment)}
    labels = {"ganzoo": "ganzoo (working tree)"}
    if args.baseline_rev:
        module, short = load_baseline(args.baseline_rev)
        makers["baseline"] = _ganzoo_maker(module)
        rev = short if short.startswith(args.baseline_rev) else f"{args.baseline_rev} = {short}"
        labels["baseline"] = f"baseline ({rev})"
    if args.reference:
        makers["reference"] = _reference_maker(import_reference(args.reference))
        labels["reference"] = f"reference ({Path(args.reference).resolve()})"

    print(f"torch {torch.__version__}, {platform.machine()}, threads={torch.get_num_threads()}, malloc: {malloc}, "
          f"{args.repeats} samples of ~{args.sample_s} s per candidate, interleaved")  # fmt: skip
    for label in labels.values():
        print(f"  {label}")
    results = []
    started = time.perf_counter()
    for res, batch in args.sizes:
        gen = torch.Generator().manual_seed(SEED + 1)
        images = torch.rand([batch, 3, res, res], generator=gen) * 2 - 1
        weights = torch.randn([batch, 3, res, res], generator=gen)
        for make in makers.values():  # once per size: one-time set-up and the allocator's first growth
            _workload(make(args.presets[-1], 1.0), "fwd+bwd", images, weights)(True)
        for preset in args.presets:
            for p in args.ps:
                for mode in args.modes:
                    config = f"{preset} p={p:g} {res}x{res} b{batch} {mode}"
                    calls = {name: _workload(make(preset, p), mode, images, weights) for name, make in makers.items()}
                    timed = time_config(calls, batch, args)
                    ganzoo_rate = timed["ganzoo"]["img_per_s"]
                    for name, t in timed.items():
                        results.append({"config": config, "preset": preset, "p": p, "res": res, "batch": batch,
                                        "mode": mode, "candidate": name, **t,
                                        "ganzoo_over_candidate": ganzoo_rate / t["img_per_s"]})  # fmt: skip
                    summary = ", ".join(f"{name} {t['img_per_s']:.0f}" for name, t in timed.items())
                    print(f"  {config}: {summary} img/s", flush=True)
    elapsed = time.perf_counter() - started

    print()
    print(f"{'config':<32}{'candidate':<11}{'img/s':>10}{'spread':>8}{'ganzoo/cand':>13}")
    last = None
    for row in results:
        shown = row["config"] if row["config"] != last else ""
        last = row["config"]
        ratio = "" if row["candidate"] == "ganzoo" else f"{row['ganzoo_over_candidate']:.2f}"
        print(f"{shown:<32}{row['candidate']:<11}{row['img_per_s']:>10.1f}{row['spread']:>7.0%} {ratio:>12}")
    print(f"(img/s: median of {args.repeats}; spread: (max - min) / median; ganzoo/cand: ganzoo's img/s over the "
          f"candidate's, above 1 = ganzoo faster; {elapsed:.0f} s)")  # fmt: skip
    for name in makers:
        if name == "ganzoo":
            continue
        ratios = [r["ganzoo_over_candidate"] for r in results if r["candidate"] == name]
        geo = math.exp(statistics.fmean(math.log(x) for x in ratios))
        print(f"ganzoo/{name}: geometric mean {geo:.2f} over {len(ratios)} configs (min {min(ratios):.2f}, "
              f"max {max(ratios):.2f})")  # fmt: skip

    if args.json:
        report = {"torch": torch.__version__, "machine": platform.machine(), "threads": torch.get_num_threads(),
                  "malloc": malloc, "candidates": labels,
                  "args": {k: v for k, v in vars(args).items() if k != "json"}, "results": results}  # fmt: skip
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
