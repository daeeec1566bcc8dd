"""Toy-scale AdaFM study on a GP-GAN at 32x32 on CPU (issue 15's evidence), in the spirit of
Zhao, Cong & Carin (ICML 2020), Table 1 and Figure 5.

    python scripts/study_gpgan_adafm.py --out /tmp/gpgan-study [--kimg 12] [--threads 2] [--images 500]

Source: the bundled class-conditional GP-GAN ``gpgan-starter-32`` (classes discs, stripes,
Primitives-PS). Target: ``--images`` checkerboards made here (two random colours, 2-6 cells per
side, random angle and phase: a domain none of the source's classes draws), labelled with the
source's class 1 (``stripes``, the nearest class by FID) in a ``dataset.json``, so the recipes
that keep the source's conditioning finetune that class. Runs, all at the same kimg, batch 16,
seed 0, ADA on, G's parameter average at ``--ema-beta`` per minibatch (0.99: GAN_stability's
0.999 averages over ~1000 minibatches, longer than these runs, and would leave a freshly built G
mostly at its init):

* ``scratch``: the same architecture from random init;
* ``full``: every G and D parameter trained;
* ``freezed``: FreezeD, the default D layers next to the image frozen;
* ``adafm``: AdaFM as Zhao et al. apply it (γ, β on the kernels of the general G blocks, the
  specific blocks trained, D's blocks next to the image frozen);
* further variants of the adafm recipe when given with ``--adafm-variants``.

FID and KID (x1000) with the weight-free ``pixels`` extractor (16x16 thumbnails; Inception
weights cannot be downloaded here) against the target images, ``--num-gen`` samples of class 1
(the paper variant's G is unconditional),
at every ``--snap`` kimg. Writes ``OUT/results.json``, ``OUT/report.md`` and each run's folder
(its ``samples.png`` is the sample grid).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from PIL import Image

import numpy as np

from ganzoo.train.runner import finetune

SOURCE = "gpgan-starter-32"
TARGET_CLASS = 1  # stripes: the source class nearest to the checkerboards
RES = 32


def checkers(n: int, seed: int) -> np.ndarray:
    """``n`` checkerboards, uint8 NHWC: two random colours, 2-6 cells per side, random angle and phase."""
    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[0:RES, 0:RES] + 0.5) / RES
    cells = rng.uniform(2, 6, [n, 1, 1])
    angle = rng.uniform(0, np.pi / 2, [n, 1, 1])
    u, v = xx * np.cos(angle) + yy * np.sin(angle), yy * np.cos(angle) - xx * np.sin(angle)
    phase = rng.uniform(0, 1, [n, 2, 1, 1])
    mask = ((np.floor(u * cells + phase[:, 0]) + np.floor(v * cells + phase[:, 1])) % 2)[:, None]
    img = rng.uniform(0, 1, [n, 3, 1, 1]) * mask + rng.uniform(0, 1, [n, 3, 1, 1]) * (1 - mask)
    return np.clip(np.rint(img.transpose(0, 2, 3, 1) * 255), 0, 255).astype(np.uint8)


def trainable(source: str, recipe: str, **settings) -> dict:
    """Trainable parameters of G and D under ``recipe``: what Adam updates (frozen weights,
    FreezeD's layers and AdaFM's kernels, are buffers)."""
    import ganzoo
    from ganzoo.train.recipes import prepare

    nets = prepare(ganzoo.load(source), recipe, **settings)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    return {"G": count(nets.G), "D": count(nets.D)}


def _curves(run: Path) -> dict[str, list[tuple[float, float]]]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return {key: [(r["kimg"], r[key]) for r in rows if key in r] for key in ("fid", "kid")}


def make_target(folder: Path, count: int) -> Path:
    if (folder / "dataset.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    labels = []
    for i, img in enumerate(checkers(count, seed=2026)):
        Image.fromarray(img).save(folder / f"{i:04d}.png")
        labels.append([f"{i:04d}.png", TARGET_CLASS])
    (folder / "dataset.json").write_text(json.dumps({"labels": labels}) + "\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kimg", type=float, default=12.0)
    parser.add_argument("--snap", type=float, default=2.0)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num-gen", type=int, default=500)
    parser.add_argument("--ema-beta", type=float, default=0.99, help="G's parameter average per minibatch.")
    parser.add_argument("--adafm-variants", nargs="*", default=[], help="Further values of the adafm recipe's variant option.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    target = make_target(args.out / "target", args.images)
    from ganzoo.metrics.evaluate import evaluate

    metric_options = {"num_gen": args.num_gen, "feature_extractor": "pixels", "class_idx": TARGET_CLASS}
    runs: dict[str, tuple[str, dict]] = {"scratch": ("scratch", {}), "full": ("full", {}), "freezed": ("freezed", {}),
                                         "adafm": ("adafm", {})}  # fmt: skip
    for variant in args.adafm_variants:
        runs[f"adafm ({variant})"] = ("adafm", {"adafm_variant": variant})
    results: dict = {
        "source": SOURCE, "target": f"{args.images} checkerboards, 32x32, labelled class {TARGET_CLASS} (stripes)",
        "kimg": args.kimg, "batch": 16, "aug": "ada", "threads": args.threads, "ema_beta": args.ema_beta,
        "metrics": f"FID and KID x1000 on pixels@16 features, {args.num_gen} samples of class {TARGET_CLASS} vs the targets",
        "runs": {},
    }  # fmt: skip
    start_scores = evaluate(SOURCE, target, metrics=["fid", "kid"], progress=False, **metric_options)
    results["source_scores"] = {"fid": start_scores["fid"], "kid": start_scores["kid"]}
    for label, (recipe, settings) in runs.items():
        run = args.out / label.replace(" ", "_").replace("(", "").replace(")", "")
        start = time.time()
        if not (run / "config.json").is_file():
            finetune(SOURCE, target, run, recipe=recipe, aug="ada", kimg=args.kimg, batch=16, snap=args.snap,
                     tick_kimg=args.snap, metrics=["fid", "kid"], metrics_options=metric_options, progress=False, seed=0,
                     ema_beta=args.ema_beta, **settings)  # fmt: skip
        results["runs"][label] = {"recipe": recipe, **settings, "seconds": round(time.time() - start, 1),
                                  "trainable": trainable(SOURCE, recipe, **settings), **_curves(run)}  # fmt: skip
        print(label, results["runs"][label]["fid"][-1], flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report = render(results)
    (args.out / "report.md").write_text(report)
    print(report)


def render(results: dict) -> str:
    first = next(iter(results["runs"].values()))
    kimgs = [k for k, _ in first["fid"]]
    lines = [f"Source {results['source']} before finetuning: FID {results['source_scores']['fid']:.2f}, "
             f"KID x1000 {1000 * results['source_scores']['kid']:.2f}", ""]  # fmt: skip
    lines.append("| run | trainable G | trainable D | " + " | ".join(f"FID {k:g} kimg" for k in kimgs) + " | KID x1000, end | s |")
    lines.append("| --- " * (len(kimgs) + 5) + "|")
    for label, r in results["runs"].items():
        fids = " | ".join(f"{v:.2f}" for _, v in r["fid"])
        lines.append(f"| {label} | {r['trainable']['G']:,} | {r['trainable']['D']:,} | {fids} | "
                     f"{1000 * r['kid'][-1][1]:.2f} | {r['seconds']:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
