#!/usr/bin/env python
"""GPU training speed of ganzoo's engine in seconds per kimg, to set beside the published
StyleGAN2-ADA 1-GPU numbers (the ADA paper's appendix: ~22 s/kimg on a V100, ~12.5 s/kimg on an
A100 at 256x256 with its ``paper256`` configuration).

    python scripts/bench_gpu_train.py [--res 256] [--batch 64] [--iters 32] [--aug ada] [--json OUT]

Configuration ``paper256`` of StyleGAN2-ADA's ``train.py`` (map=8, channel_base 16384,
channel_max 512, fp16 in the 4 highest-resolution blocks, conv_clamp 256, mbstd group 8,
gamma 1, EMA 20 kimg; batch 64 on one GPU), random init, synthetic "real" images held on the
GPU (no data loading). Times one warm-up cycle, then ``--iters`` minibatches (16 = one R1
cycle: every 4th minibatch adds path-length regularization, every 16th R1), synchronized.
Timings are informational; nothing asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ganzoo.architectures import get_architecture
from ganzoo.architectures.stylegan2.networks import Discriminator, Generator
from ganzoo.train.dataset import ProceduralImages
from ganzoo.train.loop import Trainer, TrainingOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iters", type=int, default=32)
    parser.add_argument("--aug", default="ada", choices=["ada", "none"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    synthesis = dict(channel_base=16384, channel_max=512, num_fp16_res=4, conv_clamp=256)
    G = Generator(512, 0, 512, args.res, 3, mapping_kwargs=dict(num_layers=8), synthesis_kwargs=synthesis)
    D = Discriminator(0, args.res, 3, epilogue_kwargs=dict(mbstd_group_size=8), **synthesis)
    G_ema = Generator(512, 0, 512, args.res, 3, mapping_kwargs=dict(num_layers=8), synthesis_kwargs=synthesis)
    G_ema.load_state_dict(G.state_dict())
    pool = torch.from_numpy(np.random.RandomState(0).randint(0, 256, [256, 3, args.res, args.res]).astype(np.uint8))

    def render(indices):
        return pool[torch.from_numpy(indices % len(pool))], None

    data = ProceduralImages(render, args.res, 3, "bench", {"res": args.res})
    opts = TrainingOptions.for_architecture(get_architecture("stylegan2"), G.init_kwargs, args.batch, aug=args.aug, r1_gamma=1.0,
                                            ema_kimg=20.0, lr_G=0.0025, lr_D=0.0025)  # fmt: skip
    trainer = Trainer(G, G_ema, D, data, opts, device=args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    for _ in range(16):  # warm-up: one full regularization cycle (cuDNN autotuning, allocator)
        trainer.step()
    sync()
    start = time.perf_counter()
    for _ in range(args.iters):
        trainer.step()
    sync()
    seconds = time.perf_counter() - start
    images = args.iters * args.batch
    result = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__, "res": args.res, "batch": args.batch, "iters": args.iters, "aug": args.aug,
        "config": "paper256 (map 8, cbase 16384, cmax 512, fp16 in 4 blocks)", "seconds": seconds,
        "img_per_s": images / seconds, "s_per_kimg": seconds / images * 1000,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else None,
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
