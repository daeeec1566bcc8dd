#!/usr/bin/env python
"""Toy-scale GAN Cocktail study at 32x32 on CPU: cocktail vs the baselines at equal budget.

    python scripts/study_merge.py --out /tmp/study_merge [--root-kimg 0.8] [--merge-kimg 1.6] \
        [--num-gen 500] [--threads 2] [--batch 8] [--aug ada] [--device cpu] [--methods cocktail,scratch,transfer,ewc,freezed]

Sources: three small StyleGAN2 generators at 32x32 (random weights, seeds 1-3) whose outputs
are pushed towards red, green and blue by their toRGB biases: three clearly different synthetic
"domains" made without training. They are a stand-in for pretrained models, not pretrained
models: the study checks the machinery and the relative ordering, not the paper's numbers.

Every method runs through :func:`ganzoo.cocktail.merge` with the same engine settings (``--aug``,
lr 0.0025, batch ``--batch``) and the same budget, ``(N-1)·root_kimg + merge_kimg`` images shown to D:
cocktail spends it on two rootings and the union fine-tuning, the baselines on the union.

Metrics (:func:`ganzoo.cocktail.evaluate_merge`): FID and KID of each class against ``--num-gen``
samples of each source generator (generated references, not real data) with the weight-free
``pixels@8`` extractor (8x8 thumbnails; Inception weights cannot be downloaded here, and a
random-weight network would give numbers without meaning), and of the union of the classes
against the union of the sources. Writes ``OUT/results.json`` and ``OUT/report.md`` and prints
the table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ganzoo.checkpoint import GAN
from ganzoo.cocktail import METHODS, load_sources, merge
from ganzoo.architectures.stylegan2.networks import Discriminator, Generator

RES = 32
DOMAINS = {"red": (1.0, -1.0, -1.0), "green": (-1.0, 1.0, -1.0), "blue": (-1.0, -1.0, 1.0)}
EXTRACTOR = "pixels@8"


def source_gan(seed: int, rgb: tuple[float, float, float]) -> GAN:
    """A small random 32x32 GAN whose images lean towards one colour (its toRGB biases)."""
    torch.manual_seed(seed)
    arch = dict(channel_base=1024, channel_max=32)
    mapping = dict(num_layers=2, lr_multiplier=1.0)
    G = Generator(32, 0, 32, RES, 3, mapping_kwargs=mapping, synthesis_kwargs=arch)
    D = Discriminator(0, RES, 3, mapping_kwargs=mapping, **arch)
    with torch.no_grad():
        for p in list(G.parameters()) + list(D.parameters()):
            p.add_(torch.randn_like(p) * 0.1)
        for name, p in G.named_parameters():
            if name.endswith("torgb.bias"):
                p.copy_(torch.tensor(rgb) / 3)
    return GAN(G.eval(), None, D.eval(), config={"license": "cc-by-4.0", "source": {"made_by": "scripts/study_merge.py"}})


def _row(method: str, evaluation: dict, names: list[str], seconds: float) -> dict:
    own = {k: evaluation["fid"][k][k] for k in names}
    nearest = {k: min(names, key=lambda j: evaluation["fid"][k][j]) for k in names}
    return {"method": method, "fid_own": own, "fid_own_mean": float(np.mean(list(own.values()))),
            "fid_union": evaluation["fid_union"], "kid_union": evaluation["kid_union"],
            "classes_nearest_own_source": sum(nearest[k] == k for k in names), "nearest": nearest,
            "seconds": seconds}  # fmt: skip


def _table(rows: list[dict], names: list[str]) -> str:
    head = ["method", *(f"FID {k}" for k in names), "FID own (mean)", "FID union", "KID union", "class = nearest source", "CPU s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["method"], *(f"{r['fid_own'][k]:.1f}" for k in names), f"{r['fid_own_mean']:.1f}", f"{r['fid_union']:.1f}",
                 f"{r['kid_union']:.3f}", f"{r['classes_nearest_own_source']}/{len(names)}", f"{r['seconds']:.0f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--root-kimg", type=float, default=0.8)
    parser.add_argument("--merge-kimg", type=float, default=1.6)
    parser.add_argument("--num-gen", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (training, source sampling, features)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--aug", default="ada", help="ada | none (endless generated data: D cannot overfit much)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    names = list(DOMAINS)
    sources = [source_gan(seed, rgb) for seed, rgb in enumerate(DOMAINS.values(), 1)]
    args.out.mkdir(parents=True, exist_ok=True)
    rows, distances = [], {}
    for method in methods:
        start, wall = time.process_time(), time.perf_counter()
        path = merge(sources, args.out / method, method=method, root_kimg=args.root_kimg, merge_kimg=args.merge_kimg,
                     batch=args.batch, seed=args.seed, aug=args.aug, resume=True, eval=True, num_gen=args.num_gen,
                     class_names=names, eval_options={"feature_extractor": EXTRACTOR, "device": args.device},
                     progress=False, **({"device": args.device} if args.device != "cpu" else {}))  # fmt: skip
        seconds = time.process_time() - start
        summary = json.loads((path / "merge_summary.json").read_text())
        rows.append(_row(method, summary["eval"], names, seconds) | {"wall_seconds": time.perf_counter() - wall})
        if method == "cocktail":
            distances = summary["distances"]
        print(f"{method}: done in {seconds:.0f} CPU s", flush=True)
    # The sources against each other: what a class that copied the wrong source would score.
    from ganzoo.cocktail import SourceSampler
    from ganzoo.metrics.features import get_extractor
    from ganzoo.metrics.scores import fid

    extractor = get_extractor(EXTRACTOR)
    loaded = load_sources(sources, names)
    feats = [extractor(SourceSampler(s.gan, RES, 3, args.seed + 1, (9,))(np.arange(args.num_gen)).permute(0, 2, 3, 1).numpy())
             for s in loaded]  # fmt: skip
    cross = {a: {b: fid(feats[i], feats[j]) for j, b in enumerate(names)} for i, a in enumerate(names)}
    results = {"setting": {"resolution": RES, "sources": "random 32x32 StyleGAN2s pushed to red/green/blue (toRGB biases)",
                           "root": names[0], "root_kimg": args.root_kimg, "merge_kimg": args.merge_kimg,
                           "budget_kimg": (len(names) - 1) * args.root_kimg + args.merge_kimg, "batch": args.batch, "aug": args.aug,
                           "seed": args.seed, "extractor": EXTRACTOR, "num_gen": args.num_gen,
                           "reference": "generated samples of each source (no real data)", "threads": args.threads,
                           "device": args.device},
               "rows": rows, "distances": distances, "source_vs_source_fid": cross}  # fmt: skip
    table = _table(rows, names)
    dist_lines = [f"| {k} | {v['d(r,i)']:.2f} | {v['d(r,r->i)']:.2f} |" for k, v in distances.items()]
    report = (table + "\n\nWeight distance to the root (" + names[0] + "), mean over layers of G_ema and D:\n\n"
              "| source i | d(r, i) | d(r, r->i) |\n|---|---|---|\n" + "\n".join(dist_lines) + "\n\n"
              "FID between two different sources' samples (the score of a class that copied the wrong source): "
              + ", ".join(f"{a}-{b} {cross[a][b]:.1f}" for i, a in enumerate(names) for b in names[i + 1 :]) + "\n")  # fmt: skip
    (args.out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (args.out / "report.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
