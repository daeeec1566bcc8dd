#!/usr/bin/env python
"""Side-by-side CPU training throughput: ganzoo's engine vs the StyleGAN2-ADA reference loop.

The reference (NVlabs stylegan2-ada-pytorch: ``training.networks``, ``training.loss``,
``torch_utils``) is not part of ganzoo and is never shipped with it; point ``--reference`` at a
local checkout (the directory holding ``training/loss.py``). Only its pure-PyTorch code paths run.

Both sides train the same networks (reference weights copied into ganzoo's with
``load_state_dict(strict=True)``) on the same random "real" images with the same schedule, one
``--iters`` cycle of minibatches (default 16: every minibatch runs Gmain and Dmain, every 4th
Greg (path length), every 16th Dreg (R1)), Adam with the lazy-regularization correction, G EMA:

* reference: its ``StyleGAN2Loss.accumulate_gradients`` driven phase by phase the way its
  ``training_loop.py`` does (requires_grad toggling, ``gain = interval``, nan_to_num, Adam step,
  EMA), without its data loader and statistics collection (which only costs it time);
* ganzoo: :class:`ganzoo.train.loop.Trainer` (in-memory data, ``aug='none'``, or ``--aug``).

Both in float32 (the reference's fp16 blocks are switched off with ``num_fp16_res=0`` on its
side: on CPU float16 convolutions are unusably slow; ganzoo computes in float32 on CPU by design).
Runs are interleaved (reference, ganzoo, reference, ...) after a warm-up minibatch each, and the
median seconds per minibatch are reported with img/s and the ratio.

Usage::

    python scripts/bench_train.py --reference /path/to/stylegan2-ada-pytorch \
        [--res 64] [--batch 8] [--iters 16] [--repeats 1] [--channel-base 4096] [--channel-max 256] \
        [--threads 2] [--aug none|ada] [--compile] [--json OUT]

``--compile`` adds a third column, ganzoo with ``TrainingOptions(compile=True)`` (G and D through
``torch.compile`` in Gmain/Dmain; R1 and path length eager), its first (compiling) minibatch
timed apart.

Timings are informational; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from reference_code import ReferenceLoop  # scripts/reference_code.py (this folder is on sys.path)

REPO_ROOT = Path(__file__).resolve().parent.parent


def configs(args) -> tuple[dict, dict]:
    """The StyleGAN2-ADA 'auto' config at ``--res`` (2 mapping layers, fp16 on the 4 highest
    resolutions, clamp 256, minibatch-std group 4), with the channel counts of the arguments."""
    g = dict(z_dim=512, w_dim=512, c_dim=0, img_resolution=args.res, img_channels=3,
             mapping_kwargs={"num_layers": 2},
             synthesis_kwargs={"channel_base": args.channel_base, "channel_max": args.channel_max,
                               "num_fp16_res": 4, "conv_clamp": 256})  # fmt: skip
    d = dict(c_dim=0, img_resolution=args.res, img_channels=3, channel_base=args.channel_base,
             channel_max=args.channel_max, num_fp16_res=4, conv_clamp=256, epilogue_kwargs={"mbstd_group_size": 4})  # fmt: skip
    return g, d


def no_fp16(kwargs: dict) -> dict:
    kwargs = copy.deepcopy(kwargs)
    if "synthesis_kwargs" in kwargs:
        kwargs["synthesis_kwargs"]["num_fp16_res"] = 0
    else:
        kwargs["num_fp16_res"] = 0
    return kwargs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="StyleGAN2-ADA checkout (holds training/loss.py)")
    parser.add_argument("--res", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=16, help="minibatches per timed run (16 = one R1 cycle)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--channel-base", type=int, default=4096)
    parser.add_argument("--channel-max", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--aug", default="none", choices=["none", "ada"], help="ganzoo side only (the reference runs without)")
    parser.add_argument("--compile", action="store_true",
                        help="also time ganzoo with compile=True (torch.compile; its compile time is printed apart)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ref_dir = Path(args.reference).resolve()
    if not (ref_dir / "training" / "loss.py").is_file():
        sys.exit(f"error: --reference {args.reference}: no training/loss.py there")
    sys.path.insert(0, str(ref_dir))
    from training import loss as ref_loss  # type: ignore[import-not-found]
    from training import networks as ref_networks  # type: ignore[import-not-found]

    sys.path.insert(0, str(REPO_ROOT))
    from ganzoo.architectures import get_architecture
    from ganzoo.architectures.stylegan2.networks import Discriminator, Generator
    from ganzoo.train.dataset import TrainingImages
    from ganzoo.train.loop import Trainer, TrainingOptions

    g_kwargs, d_kwargs = configs(args)
    torch.manual_seed(0)
    G_ref = ref_networks.Generator(**no_fp16(g_kwargs))
    D_ref = ref_networks.Discriminator(**no_fp16(d_kwargs))
    G = Generator(**g_kwargs)
    D = Discriminator(**d_kwargs)
    G.load_state_dict(G_ref.state_dict(), strict=True)
    D.load_state_dict(D_ref.state_dict(), strict=True)
    images = (torch.rand([args.batch * 4, 3, args.res, args.res]) * 255).to(torch.uint8)
    real = images[: args.batch].float() / 127.5 - 1
    gamma = 0.0002 * args.res**2 / args.batch

    loss = ref_loss.StyleGAN2Loss(torch.device("cpu"), G_ref.mapping, G_ref.synthesis, D_ref, r1_gamma=gamma)

    def accumulate(phase, real_img, c, z, gen_c, gain, cur_nimg):
        loss.accumulate_gradients(phase, real_img, c, z, gen_c, sync=True, gain=gain)

    ref = ReferenceLoop(G_ref.train().requires_grad_(False), D_ref.train().requires_grad_(False), accumulate, real, args.batch,
                        torch.device("cpu"), ema_kimg=args.batch * 10 / 32, ema_rampup=0.05)  # fmt: skip

    def make_trainer(compiled: bool) -> Trainer:
        options = TrainingOptions.for_architecture(get_architecture("stylegan2"), G.init_kwargs, args.batch, r1_gamma=gamma,
                                                   aug=args.aug, aug_p=0.2 if args.aug == "ada" else 0.0, compile=compiled)  # fmt: skip
        return Trainer(copy.deepcopy(G), copy.deepcopy(G), copy.deepcopy(D), TrainingImages(images, "bench", "bench"), options)

    trainers = {"ganzoo": make_trainer(False)}
    if args.compile:
        trainers["ganzoo compiled"] = make_trainer(True)

    def run(step, label: str) -> float:
        start = time.perf_counter()
        for _ in range(args.iters):
            step()
        seconds = (time.perf_counter() - start) / args.iters
        print(f"  {label}: {seconds:.3f} s/minibatch", flush=True)
        return seconds

    # Warm-up: one full minibatch each (all four phases), then restart both schedules at 0.
    ref.step()
    first_minibatch_s = {}
    for name, trainer in trainers.items():
        start = time.perf_counter()
        trainer.step()  # the compiled trainer compiles here
        first_minibatch_s[name] = time.perf_counter() - start
        print(f"  first minibatch, {name}: {first_minibatch_s[name]:.1f} s", flush=True)
    ref.batch_idx = ref.cur_nimg = 0
    for trainer in trainers.values():
        trainer.batch_idx = trainer.cur_nimg = 0
    times: dict[str, list[float]] = {"reference": [], **{name: [] for name in trainers}}
    for r in range(args.repeats):
        print(f"repeat {r + 1}/{args.repeats}", flush=True)
        times["reference"].append(run(ref.step, "reference"))
        for name, trainer in trainers.items():
            times[name].append(run(trainer.step, name))
    ref_s, gz_s = statistics.median(times["reference"]), statistics.median(times["ganzoo"])
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    result = {
        "config": {**vars(args), "json": None, "reference": str(ref_dir)},
        "platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "seconds_per_minibatch": medians,
        "img_per_s": {name: args.batch / s for name, s in medians.items()},
        "throughput_ratio_ganzoo_over_reference": ref_s / gz_s,
        "first_minibatch_s": first_minibatch_s,
        "runs": times,
    }  # fmt: skip
    print(f"\n{args.res}x{args.res}, batch {args.batch}, {args.iters} minibatches (R1 every 16, PL every 4), "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print(f"{'':15s} {'s/minibatch':>12s} {'img/s':>8s} {'time / reference':>17s}")
    for name, s in medians.items():
        print(f"{name:15s} {s:12.3f} {args.batch / s:8.2f} {s / ref_s:17.2f}")
    print(f"throughput ganzoo / reference: {ref_s / gz_s:.2f}x")
    if "ganzoo compiled" in medians:
        compiled_s = medians["ganzoo compiled"]
        result["throughput_ratio_compiled_over_reference"] = ref_s / compiled_s
        print(f"throughput ganzoo compiled / reference: {ref_s / compiled_s:.2f}x, compiled / eager: {gz_s / compiled_s:.2f}x "
              f"(first minibatch, compiling: {first_minibatch_s['ganzoo compiled']:.1f} s)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
