"""Trains the bundled starter zoo (``ganzoo/bundled/``) on CPU with ganzoo itself.

    python scripts/train_starter_zoo.py --work /tmp/starter --kimg 40 --threads 1 [--models NAME ...] [--install]

Each StyleGAN2 model is a ``ganzoo pretrain`` run (random init, no augmentation: the data are
unlimited procedural images) of the default small architecture at 32x32 on the data named in
:data:`ganzoo.starter.MODELS`; the GP-GAN and BigGAN models are the ``scratch`` recipe of the same
engine on their own small networks (:func:`ganzoo.starter.build_model`), class-conditional over
the starter domains, with their architecture's training settings. A run directory that exists is resumed to ``--kimg`` (so the zoo
can be trained in pieces). ``--install`` copies each final checkpoint (G_ema, G, D, config with
the exact command, kimg and wall time, sample grid) into ``ganzoo/bundled/NAME``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from ganzoo.checkpoint import GAN
from ganzoo.starter import MODELS, RESOLUTION, build_model, classes_stream, domain_stream
from ganzoo.train.pretrain import CLASSES_PREFIX, describe_data, pretrain
from ganzoo.train.runner import finetune

BUNDLED = Path(__file__).resolve().parents[1] / "ganzoo" / "bundled"


def _data(spec: str):
    if spec.startswith(CLASSES_PREFIX):
        return classes_stream(spec[len(CLASSES_PREFIX) :].split(","))
    return domain_stream(spec.split(":", 1)[1]) if spec.startswith("domain:") else spec


def _train(model, run: Path, kimg: float, batch: int) -> None:
    """One call's training of ``model`` in ``run`` (resumed when the run exists)."""
    if (run / "run.json").is_file():
        if model.architecture == "stylegan2":
            pretrain(_data(model.data), resume=run, kimg=kimg, progress=True)
        else:
            finetune(resume=run, data=_data(model.data), kimg=kimg, progress=True)
    elif model.architecture == "stylegan2":
        pretrain(_data(model.data), run, resolution=RESOLUTION, kimg=kimg, batch=batch, snap=max(kimg / 4, 1), seed=0,
                 progress=True)  # fmt: skip
    else:
        note = describe_data(model.data)
        gan = build_model(model)
        gan.config["source"] = {"made_by": "ganzoo (scripts/train_starter_zoo.py, scratch recipe)", "training_data": note}
        options = {"batch": batch, **(model.options or {})}
        finetune(gan, _data(model.data), run, recipe="scratch", kimg=kimg, aug="none", snap=max(kimg / 4, 1), seed=0,
                 progress=True, progress_label="pretrain", source_label="random init (ganzoo.starter.build_model)",
                 lineage_notes=[note], **options)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="Folder for the run directories.")
    parser.add_argument("--kimg", type=float, default=40.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="*", default=[m.name for m in MODELS])
    parser.add_argument("--install", action="store_true", help="Copy the final checkpoints into ganzoo/bundled/.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "python scripts/train_starter_zoo.py " + shlex.join(sys.argv[1:])
    for model in MODELS:
        if model.name not in args.models:
            continue
        run = args.work / model.name
        start = time.time()
        _train(model, run, args.kimg, args.batch)
        seconds = time.time() - start
        times = json.loads((run / "times.json").read_text()) if (run / "times.json").is_file() else []
        times.append({"command": command, "kimg": args.kimg, "seconds": round(seconds, 1), "threads": args.threads})
        (run / "times.json").write_text(json.dumps(times, indent=2) + "\n")
        print(f"{model.name}: {args.kimg} kimg, {seconds:.0f} s this call", flush=True)
        if args.install:
            install(model, run, times)


def install(model, run: Path, times: list[dict]) -> Path:
    """Copies a finished run's checkpoint into ``ganzoo/bundled/NAME`` with how it was made."""
    gan = GAN.load(run)
    config = gan.config
    config["source"] = {
        "bundled": True,
        "made_by": ("ganzoo pretrain" if model.architecture == "stylegan2" else "ganzoo scratch recipe")
        + " (scripts/train_starter_zoo.py), on CPU",
        "training_data": model.description,
        "training_runs": times,
        "total_seconds": round(sum(t["seconds"] for t in times), 1),
        "kimg": config["training"]["kimg"],
    }
    config.pop("metrics", None)
    gan.config = config
    out = BUNDLED / model.name
    gan.save(out, overwrite=True)
    (out / "samples.png").write_bytes((run / "samples.png").read_bytes())
    print(f"installed {out}", flush=True)
    return out


if __name__ == "__main__":
    main()
