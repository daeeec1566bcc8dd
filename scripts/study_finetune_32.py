"""Toy-scale transfer study at 32x32 on CPU, on the bundled starter zoo (issue 5's evidence).

    python scripts/study_finetune_32.py --out /tmp/study32 [--kimg 4] [--threads 2]

Target: 100 images of soft squares (related to the ``discs`` domain: same colours and layout,
another shape), made here. Runs, all at the same kimg, batch 16:

* ``full`` from ``discs-stylegan2-32`` (a source pretrained on related data), with ADA;
* ``full`` from ``primitives-ps-stylegan2-32`` (the generic synthetic source), with ADA;
* ``scratch`` (same architecture, random init), with ADA;
* ``full`` from ``discs-stylegan2-32`` with ``--aug none`` (D overfitting on 100 images).

FID is measured every kimg against the 100 target images with the weight-free ``pixels``
extractor (16x16 thumbnails; Inception weights cannot be downloaded here), 500 samples. Writes
``OUT/results.json``, ``OUT/report.md`` and each run's sample grid.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganzoo.train.runner import finetune

RES = 32


def squares(n: int, seed: int) -> np.ndarray:
    """``n`` soft squares of random colour, size and position on a random gray, uint8 NHWC."""
    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[0:RES, 0:RES] + 0.5) / RES
    c = rng.uniform(0.3, 0.7, [n, 2, 1, 1])
    half = rng.uniform(0.12, 0.3, [n, 1, 1])
    dist = np.maximum(np.abs(xx - c[:, 0]), np.abs(yy - c[:, 1]))
    mask = 1 / (1 + np.exp((dist - half) * RES * 1.5))[:, None]
    background = rng.uniform(0.1, 0.9, [n, 1, 1, 1])
    color = rng.uniform(0, 1, [n, 3, 1, 1])
    img = background * (1 - mask) + color * mask
    return np.clip(np.rint(img.transpose(0, 2, 3, 1) * 255), 0, 255).astype(np.uint8)


def _curve(run: Path, key: str) -> list[tuple[float, float]]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [(r["kimg"], r[key]) for r in rows if key in r]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kimg", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num-gen", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "target"
    if not target.is_dir():
        target.mkdir()
        for i, img in enumerate(squares(100, seed=2026)):
            Image.fromarray(img).save(target / f"{i:04d}.png")
    from ganzoo.metrics.evaluate import evaluate

    fid_options = {"num_gen": args.num_gen, "feature_extractor": "pixels"}
    runs = {
        "full from discs (ADA)": ("discs-stylegan2-32", "full", "ada"),
        "full from primitives-ps (ADA)": ("primitives-ps-stylegan2-32", "full", "ada"),
        "scratch (ADA)": ("discs-stylegan2-32", "scratch", "ada"),
        "full from discs (no aug)": ("discs-stylegan2-32", "full", "none"),
    }
    results: dict = {"target": "100 soft squares, 32x32", "kimg": args.kimg, "batch": 16, "fid": "pixels@16, "
                     f"{args.num_gen} samples vs the 100 targets", "runs": {}}  # fmt: skip
    for label, (source, recipe, aug) in runs.items():
        run = args.out / label.replace(" ", "_").replace("(", "").replace(")", "")
        start = time.time()
        if not (run / "config.json").is_file():
            finetune(source, target, run, recipe=recipe, aug=aug, kimg=args.kimg, batch=16, snap=1, tick_kimg=0.5,
                     metrics=["fid"], metrics_options=fid_options, progress=False, seed=0, ada_kimg=20)  # fmt: skip
        start_fid = None if recipe == "scratch" else evaluate(source, target, metrics=["fid"], progress=False, **fid_options)["fid"]
        results["runs"][label] = {
            "source": source, "recipe": recipe, "aug": aug, "seconds": round(time.time() - start, 1),
            "fid_at_start": start_fid, "fid": _curve(run, "fid"), "rt": _curve(run, "rt"), "ada_p": _curve(run, "ada_p"),
        }  # fmt: skip
        print(label, results["runs"][label]["fid"], flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["| run | FID at start | " + " | ".join(f"{k:g} kimg" for k, _ in next(iter(results["runs"].values()))["fid"]) + " |"]
    lines.append("| --- " * (len(lines[0].split("|")) - 2) + "|")
    for label, r in results["runs"].items():
        start_text = "-" if r["fid_at_start"] is None else f"{r['fid_at_start']:.2f}"
        lines.append(f"| {label} | {start_text} | " + " | ".join(f"{v:.2f}" for _, v in r["fid"]) + " |")
    lines.append("")
    lines.append("| run | r_t, last 4 ticks | ADA p at the end |")
    lines.append("| --- | --- | --- |")
    for label, r in results["runs"].items():
        late = np.mean([v for _, v in r["rt"][-4:]])
        p_end = r["ada_p"][-1][1] if r["ada_p"] else 0.0
        lines.append(f"| {label} | {late:.2f} | {p_end:.3f} |")
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
