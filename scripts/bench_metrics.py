"""Benchmark: ganzoo's precision/recall against torch-fidelity's, on the same features.

Both implementations get the same ``N x D`` float32 feature arrays (default 10k x 10k x 2048,
Inception-sized). Runs are interleaved (ganzoo, torch-fidelity, ganzoo, ...), each in a fresh
subprocess so that its peak memory (``ru_maxrss``) is its own; the wall time covers only the
metric call, not the interpreter start or loading the features. The script prints every run,
the medians, the speed ratio (torch-fidelity time / ganzoo time; > 1 means ganzoo is faster),
both results (they must agree), and the peak resident memory of each implementation.

torch-fidelity is called through its public entry point ``prc_features_to_metric`` with its
defaults (``prc_batch_size=10000``, ``save_cpu_ram=False``: its faster, full-matrix variant).

Usage::

    python scripts/bench_metrics.py                   # 10k x 10k x 2048, 2 runs each
    python scripts/bench_metrics.py --n 2000 --dim 512 --repeats 3
    python scripts/bench_metrics.py --rank             # first vs second `ganzoo rank` on one target
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_CHILD = r"""
import json, resource, sys, time
import numpy as np
import torch

which, real_path, gen_path, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
real = np.load(real_path)
gen = np.load(gen_path)
if which == "ganzoo":
    from ganzoo.metrics import precision_recall
    run = lambda: precision_recall(real, gen, k=k)
else:
    from torch_fidelity.metric_prc import prc_features_to_metric
    real_t, gen_t = torch.from_numpy(real), torch.from_numpy(gen)
    run = lambda: prc_features_to_metric(gen_t, real_t, prc_neighborhood=k, prc_batch_size=10000,
                                         save_cpu_ram=False, verbose=False)
before_kib = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() // 1024
start = time.perf_counter()
result = run()
seconds = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"which": which, "seconds": seconds, "precision": float(result["precision"]),
                  "recall": float(result["recall"]), "peak_mib": peak_kib / 1024,
                  "before_mib": before_kib / 1024}))
"""


def features(n: int, dim: int, seed: int, shift: float) -> np.ndarray:
    """Post-ReLU-like features: a mixture of 10 clusters, non-negative, with a common offset
    (what Inception pool features look like; the offset is what makes float32 distances hard)."""
    centres = np.random.default_rng(1234).normal(size=(10, dim)).astype(np.float32)  # shared by both sets
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    out = centres[labels] + rng.normal(scale=0.8, size=(n, dim)).astype(np.float32) + shift
    return np.maximum(out, 0).astype(np.float32)


def bench_rank(extractor: str, num_gen: int, num_target: int) -> int:
    """Times ``ganzoo.rank`` twice on the same target (fresh cache, then warm) and prints the ratio.

    Candidates are three small StyleGAN2 generators (64 px) with random weights saved as
    checkpoint directories; the target is ``num_target`` samples of the first one. The extractor
    runs with random weights (no download), which costs exactly what pretrained weights cost.
    """
    import os
    import time
    import warnings

    import torch
    from PIL import Image

    from ganzoo.checkpoint import GAN
    from ganzoo.architectures.stylegan2.networks import Generator

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["GANZOO_CACHE"] = str(root / "cache")
        candidates = []
        for seed in range(3):
            torch.manual_seed(seed)
            G = Generator(64, 0, 64, 64, 3, mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=2048, channel_max=64))
            gan = GAN(G.eval(), config={"license": "cc-by-4.0"})
            gan.save(root / f"candidate{seed}")
            candidates.append(str(root / f"candidate{seed}"))
            if seed == 0:
                (root / "target").mkdir()
                for i, image in enumerate(gan.sample(seeds=range(10_000, 10_000 + num_target), noise_mode="random")):
                    Image.fromarray(image).save(root / "target" / f"{i:05d}.png")
        from ganzoo.ranking import rank

        times = []
        for run in ("first (cold cache)", "second (same target)"):
            start = time.perf_counter()
            result = rank(root / "target", candidates=candidates, num_gen=num_gen, feature_extractor=extractor,
                          allow_random_weights=True, progress=False)  # fmt: skip
            times.append(time.perf_counter() - start)
            print(f"rank {run}: {times[-1]:.2f} s; best {Path(result.recommended).name}; "
                  f"features from {[c.features_from for c in result.candidates]}")  # fmt: skip
    print(f"rank speed-up of the second run: {times[0] / times[1]:.1f}x ({extractor}, target {num_target} images, "
          f"3 candidates x {num_gen} samples)")  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="samples per set")
    parser.add_argument("--dim", type=int, default=2048, help="feature size")
    parser.add_argument("--k", type=int, default=3, help="neighbourhood size")
    parser.add_argument("--repeats", type=int, default=2, help="runs per implementation (interleaved)")
    parser.add_argument("--rank", action="store_true", help="time a first and a second `rank` on one target instead")
    parser.add_argument("--rank-extractor", default="inception-fid", help="extractor for --rank")
    parser.add_argument("--rank-num-gen", type=int, default=64, help="samples per candidate for --rank")
    parser.add_argument("--rank-target", type=int, default=64, help="target images for --rank")
    args = parser.parse_args()
    if args.rank:
        return bench_rank(args.rank_extractor, args.rank_num_gen, args.rank_target)

    with tempfile.TemporaryDirectory() as tmp:
        real_path, gen_path = Path(tmp) / "real.npy", Path(tmp) / "gen.npy"
        np.save(real_path, features(args.n, args.dim, 0, 1.0))
        np.save(gen_path, features(args.n, args.dim, 1, 1.1))
        runs: dict[str, list[dict]] = {"ganzoo": [], "torch-fidelity": []}
        for repeat in range(args.repeats):
            for which in ("ganzoo", "torch-fidelity"):
                out = subprocess.run([sys.executable, "-c", _CHILD, which, str(real_path), str(gen_path), str(args.k)],
                                     capture_output=True, text=True)  # fmt: skip
                if out.returncode != 0:
                    print(f"{which} failed:\n{out.stderr}", file=sys.stderr)
                    return 1
                record = json.loads(out.stdout.strip().splitlines()[-1])
                runs[which].append(record)
                print(f"run {repeat + 1} {which:15s} {record['seconds']:8.2f} s  peak RSS {record['peak_mib']:7.0f} MiB "
                      f"(features loaded: {record['before_mib']:.0f} MiB)  P={record['precision']:.6f} R={record['recall']:.6f}")  # fmt: skip
    ours = statistics.median(r["seconds"] for r in runs["ganzoo"])
    theirs = statistics.median(r["seconds"] for r in runs["torch-fidelity"])
    print(f"\n{args.n} x {args.n} x {args.dim} float32, k={args.k}")
    print(f"median ganzoo {ours:.2f} s, torch-fidelity {theirs:.2f} s: ratio {theirs / ours:.2f}x (>1: ganzoo faster)")
    for which, records in runs.items():
        print(f"peak RSS {which}: {max(r['peak_mib'] for r in records):.0f} MiB "
              f"(of which {max(r['before_mib'] for r in records):.0f} MiB before the call)")  # fmt: skip
    a, b = runs["ganzoo"][0], runs["torch-fidelity"][0]
    print(f"results: ganzoo P={a['precision']:.6f} R={a['recall']:.6f}; torch-fidelity P={b['precision']:.6f} R={b['recall']:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
