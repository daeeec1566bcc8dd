"""Times one G step (with its 4 D steps) of the 2-D playground GANs for stacks of M models.

Shows what stacking buys: M independent GANs in one stack against M runs of a single GAN.

    python scripts/bench_playground.py [--threads 1] [--steps 20] [--models 1 2 23 103]
"""

from __future__ import annotations

import argparse
import time

import torch

from ganzoo.playground import DiscriminatorStack, GeneratorStack, target_distribution, train_gans


def seconds_per_g_step(num_models: int, steps: int) -> float:
    """Wall-clock seconds of one G step (and its D steps) for a stack of ``num_models`` GANs."""
    rng = torch.Generator().manual_seed(0)
    G, D = GeneratorStack(num_models, generator=rng), DiscriminatorStack(num_models, generator=rng)
    data = [target_distribution()] * num_models
    train_gans(G, D, data, 3, rng)                          # warm-up
    started = time.perf_counter()
    train_gans(G, D, data, steps, rng)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--models", type=int, nargs="+", default=[1, 2, 23, 103])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    single = None
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    for num_models in args.models:
        seconds = seconds_per_g_step(num_models, args.steps)
        if num_models == 1:
            single = seconds
        gain = "" if single is None else f"   {num_models * single / seconds:4.1f}x faster than {num_models} single runs"
        print(f"M={num_models:4d}: {1000 * seconds:8.1f} ms per G step{gain}")


if __name__ == "__main__":
    main()
