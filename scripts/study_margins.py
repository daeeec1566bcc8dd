#!/usr/bin/env python
"""Margins of the test suite's training outcomes over seeds, thread counts and CPU code paths.

    python scripts/study_margins.py merge --seeds 0-4                 # this process's setting
    python scripts/study_margins.py merge --seeds 0-4 --all-settings  # every setting (subprocesses)

An outcome test (a merged class's colour, r_t near the ADA target, ...) asserts a quantity with
a threshold; this script computes that quantity exactly as the test does, for several seeds,
so the margin written beside the assertion is a measured one, not a lucky seed's. With
``--all-settings`` each ATen capability this CPU supports (``default``, ``avx2``, ``avx512``; with
oneDNN's, MKL's and numpy's instruction sets lowered alike, as ``scripts/check_portable.sh`` does) is run
with 1 and 2 torch threads, each in its own process; one JSON line per (setting, seed) goes to
stdout and a summary (the smallest margin of each quantity) at the end.

Studies (the test each one backs):

- ``merge``: ``tests/test_merge.py``'s merge of a red and a blue 16² source (``merge_outcome``).
  ``separation``: the classes' distance along the red-blue line as a fraction of the sources'
  (asserted > 0.3); ``nearer_own_margin``: the smallest, over the classes, distance of a class's
  mean colour to the other source's minus to its own (grey levels; asserted > 0);
  ``rooting_ratio``: d(r, r→i) / d(r, i) (asserted < 1).
- ``ewc``: ``tests/test_merge.py``'s EWC test: the Fisher-weighted drift from the anchor with a
  strong penalty over the drift without one (asserted < 1).
- ``playground``: ``tests/test_playground.py``'s small study: W1 of Source-I over random init
  (final and best; asserted < 1) and Source-I's start recall minus Source-II's (asserted > 0).
- ``ada``: ``tests/test_train_slow.py``'s ADA study (scratch training on 32 discs, with and
  without ADA; ``ada_outcome``). ``rt_none``/``rt_ada``: r_t over the run's second half
  (asserted: ``rt_none`` > 0.65); ``p_final`` (> 0.1); ``closer``: |r_t(none) - 0.6| -
  |r_t(ADA) - 0.6| (> 0).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_ENV = {
    "default": dict(ATEN_CPU_CAPABILITY="default", ONEDNN_MAX_CPU_ISA="SSE41", MKL_ENABLE_INSTRUCTIONS="SSE4_2",
                    NPY_DISABLE_CPU_FEATURES="X86_V3 X86_V4 AVX512_ICL AVX512_SPR"),
    "avx2": dict(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2", MKL_ENABLE_INSTRUCTIONS="AVX2",
                 NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"),
    "avx512": dict(ATEN_CPU_CAPABILITY="avx512", ONEDNN_MAX_CPU_ISA="ALL", MKL_ENABLE_INSTRUCTIONS="AVX512",
                   NPY_DISABLE_CPU_FEATURES=""),
}


def available_capabilities() -> list[str]:
    """The ATen capabilities this CPU can run, lowest first."""
    import torch

    top = torch.backends.cpu.get_cpu_capability().lower()
    return ["default"] + (["avx2"] if top in ("avx2", "avx512") else []) + (["avx512"] if top == "avx512" else [])


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _tests_module(name: str):
    sys.path.insert(0, str(ROOT / "tests"))
    import importlib

    return importlib.import_module(name)


def study_merge(seed: int, work: Path, overrides: dict | None = None) -> dict:
    from ganzoo.checkpoint import GAN

    tm = _tests_module("test_merge")
    settings = {**tm.FAST, **tm.MERGE_SETTINGS, **(overrides or {})}
    out = work / f"merge{seed}"
    red, blue = tm.coloured_gan(2 * seed + 1, tm.RED), tm.coloured_gan(2 * seed + 2, tm.BLUE)
    tm.merge([red, blue], out, class_names=["red", "blue"], seed=seed, **settings)
    outcome = tm.merge_outcome(GAN.load(out), red, blue)
    row = json.loads((out / "merge_summary.json").read_text())["distances"]["blue"]
    return {"separation": outcome["separation"], "nearer_own_margin": min(outcome["nearer_own"].values()),
            "rooting_ratio": row["d(r,r->i)"] / row["d(r,i)"]}


def study_ada(seed: int, work: Path, overrides: dict | None = None) -> dict:
    ts = _tests_module("test_train_slow")
    return ts.ada_outcome(ts.ada_study(work / f"ada{seed}", seed=seed, **(overrides or {})))


def study_playground(seed: int, work: Path, overrides: dict | None = None) -> dict:
    tp = _tests_module("test_playground")
    from ganzoo.playground import reproduce

    run = reproduce(work / f"playground{seed}", seeds=[seed], config=tp.SMALL,
                    threads=int(os.environ.get("GANZOO_TEST_THREADS", "1")))  # fmt: skip
    f2 = run.results[0].figure2
    return {"w1_final_ratio": f2["source_one"]["w1_final"] / f2["random"]["w1_final"],
            "w1_best_ratio": f2["source_one"]["w1_best"] / f2["random"]["w1_best"],
            "start_recall_gap": f2["source_one"]["start_recall"] - f2["source_two"]["start_recall"]}


def study_ewc(seed: int, work: Path, overrides: dict | None = None) -> dict:
    drift = _tests_module("test_merge").ewc_drifts(work / f"ewc{seed}", seed=seed)
    return {"strong_over_weak": drift["strong"] / drift["weak"]}


STUDIES = {"merge": study_merge, "ada": study_ada, "playground": study_playground, "ewc": study_ewc}


def run_here(study: str, seeds: list[int], extra: dict) -> list[dict]:
    import torch

    threads = int(os.environ.get("GANZOO_TEST_THREADS", "1"))
    torch.set_num_threads(threads)
    setting = os.environ.get("ATEN_CPU_CAPABILITY", "native")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            start = time.perf_counter()
            result = STUDIES[study](seed, Path(tmp), **extra)
            row = {"study": study, "capability": setting, "threads": threads, "seed": seed,
                   "seconds": round(time.perf_counter() - start, 1), **result}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", nargs="?", choices=sorted(STUDIES))
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--all-settings", action="store_true")
    parser.add_argument("--threads", default="1,2", help="with --all-settings")
    parser.add_argument("--capabilities", default=None, help="with --all-settings (default: all this CPU has)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override one of the test's settings (e.g. merge_kimg=4.8), to explore")
    parser.add_argument("--print-settings", action="store_true",
                        help="print each setting as 'NAME VAR=VALUE ...' (shell-quoted) and stop: scripts/check_portable.sh reads them")
    args = parser.parse_args()
    if args.print_settings:
        import shlex

        for capability in args.capabilities.split(",") if args.capabilities else available_capabilities():
            print(capability, " ".join(f"{k}={shlex.quote(v)}" for k, v in SETTINGS_ENV[capability].items()))
        return
    if args.study is None:
        parser.error("name a study (or --print-settings)")
    extra = {"overrides": {k: json.loads(v) for k, _, v in (item.partition("=") for item in args.set)}}
    seeds = _seeds(args.seeds)
    if not args.all_settings:
        run_here(args.study, seeds, extra)
        return
    capabilities = args.capabilities.split(",") if args.capabilities else available_capabilities()
    rows = []
    for capability in capabilities:
        for threads in args.threads.split(","):
            # Passive OpenMP waiting: two threads on a core another job uses would otherwise spin
            # (a 15 s merge took 540 s so); it changes no number.
            env = {**os.environ, **SETTINGS_ENV[capability], "GANZOO_TEST_THREADS": threads, "OMP_WAIT_POLICY": "PASSIVE"}
            command = [sys.executable, __file__, args.study, "--seeds", args.seeds]
            for item in args.set:
                command += ["--set", item]
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            for line in result.stdout.splitlines():
                print(line, flush=True)
                rows.append(json.loads(line))
            if result.returncode:
                print(result.stderr[-3000:], file=sys.stderr)
                sys.exit(1)
    numeric = sorted({k for r in rows for k, v in r.items() if isinstance(v, float) and k != "seconds"})
    print(f"# {len(rows)} runs ({len(capabilities)} capabilities x {args.threads} threads x {len(seeds)} seeds)")
    for key in numeric:
        values = [r[key] for r in rows]
        print(f"# {key}: min {min(values):.4g}  max {max(values):.4g}")


if __name__ == "__main__":
    main()
