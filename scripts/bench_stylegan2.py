#!/usr/bin/env python
"""Side-by-side CPU benchmark: ganzoo's StyleGAN2 networks vs the StyleGAN2-ADA reference code.

The reference (NVlabs stylegan2-ada-pytorch: ``training.networks``, ``torch_utils``, ``dnnlib``) is
not part of ganzoo and is never shipped with it; point ``--reference`` at a local checkout (the
directory that holds ``training/networks.py``). Only its pure-PyTorch code paths are used.

What it does, with the same constructor settings for both implementations (a 256x256 paper
config by default: z/w 512, 8 mapping layers, channel_base 16384, channel_max 512,
num_fp16_res 4, conv_clamp 256, minibatch-std group 4):

1. builds the reference G_ema, G and D (seeded random init, biases and noise strengths perturbed
   so every parameter matters), copies their state dicts into ganzoo's networks with
   ``load_state_dict(strict=True)`` and prints the max abs difference of the outputs (G images,
   D logits, training-step losses and gradients);
2. times, interleaved in one process after warm-up, the median of ``--repeats`` runs of

   * ``G forward``: eval mode, ``torch.no_grad()``, ``noise_mode='const'``;
   * ``train step``: G forward in train mode with grad, D forward on the fakes and on reals,
     gradients of the non-saturating logistic losses (G loss w.r.t. G's parameters, D loss
     w.r.t. D's parameters; no optimizer);
   * ``load``: the reference's normal load path (``pickle.load`` of its own ``pickle.dump`` of
     the persistent networks G, D, G_ema) vs ganzoo loading the same weights from safetensors
     (``ganzoo.checkpoint.GAN.load`` of a checkpoint directory, with and without sha256
     verification);

3. prints a table (median ms, ratio ganzoo / reference of the medians and of the fastest runs)
   and optionally writes it as JSON.

Both implementations run with ``force_fp32=True``: on CPU ganzoo always computes in float32,
while the reference would run its ``num_fp16_res`` blocks in float16 on CPU unless forced, which
is two orders of magnitude slower there (see ``--ref-fp16``).

Usage::

    python scripts/bench_stylegan2.py --reference /path/to/stylegan2-ada-pytorch \
        [--res 256] [--batch 4] [--repeats 5] [--threads 2] [--json OUT]

    # a smoke run in about a minute: 64x64, batch 2, 3 rounds, no load benchmark
    python scripts/bench_stylegan2.py --reference /path/to/stylegan2-ada-pytorch --quick

A checkout can be exported from a bare mirror with
``git --git-dir=MIRROR archive HEAD | tar -x -C DIR``; ganzoo is imported from this repository.
On a shared machine the timings move with the load: compare ratios from one run, not across runs.

Timings are informational; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import copy
import gc
import inspect
import json
import os
import pickle
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent

NOISE_MODE = "const"


# ----------------------------------------------------------------------------------------------
# Setup


def paper_kwargs(res: int) -> tuple[dict, dict]:
    """Generator and discriminator kwargs of the StyleGAN2-ADA paper config at ``res``."""
    g_kwargs = dict(
        z_dim=512, w_dim=512, c_dim=0, img_resolution=res, img_channels=3,
        mapping_kwargs={"num_layers": 8},
        synthesis_kwargs={"channel_base": 16384, "channel_max": 512, "num_fp16_res": 4, "conv_clamp": 256},
    )  # fmt: skip
    d_kwargs = dict(
        c_dim=0, img_resolution=res, img_channels=3, channel_base=16384, channel_max=512,
        num_fp16_res=4, conv_clamp=256, epilogue_kwargs={"mbstd_group_size": 4},
    )  # fmt: skip
    return g_kwargs, d_kwargs


def import_reference(path: str) -> Any:
    """Imports ``training.networks`` from the reference checkout at ``path``."""
    from reference_code import import_checkout  # scripts/reference_code.py

    return import_checkout(path, "training.networks")


def import_ganzoo() -> tuple[Any, Any]:
    """Returns (ganzoo.architectures.stylegan2.networks, ganzoo.checkpoint); exits if ganzoo is not importable."""
    sys.path.insert(0, str(REPO_ROOT))
    try:
        from ganzoo import checkpoint
        from ganzoo.architectures.stylegan2 import networks as stylegan2
    except Exception as exc:  # noqa: BLE001
        sys.exit(
            f"error: ganzoo is not importable ({type(exc).__name__}: {exc}).\n"
            "Run with --reference-only to time the reference alone."
        )
    return stylegan2, checkpoint


def perturb_(net: torch.nn.Module, seed: int) -> None:
    """Makes biases and noise strengths non-zero so that every parameter affects the outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("noise_strength") or name.endswith("bias"):
                p.add_(0.1 * torch.randn(p.shape, generator=gen))


def count_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# ----------------------------------------------------------------------------------------------
# Workloads (identical calls for both implementations)


def g_forward(G: torch.nn.Module, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return G(z, c, noise_mode=NOISE_MODE, force_fp32=True)


def _ema_update(G: torch.nn.Module) -> dict[str, bool]:
    """``update_emas=True`` where G's forward takes it (ganzoo, later StyleGAN code); nothing for
    the reference, whose mapping network updates ``w_avg`` whenever G is in train mode."""
    return {"update_emas": True} if "update_emas" in inspect.signature(G.forward).parameters else {}


def train_step(
    G: torch.nn.Module, D: torch.nn.Module, z: torch.Tensor, c: torch.Tensor, real: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One non-saturating logistic GAN step's forward and backward passes (no optimizer).

    The reference updates ``mapping.w_avg`` whenever G is in train mode; ganzoo (like later
    StyleGAN code) only with ``update_emas=True``, so that is passed where G accepts it and both
    do the same work.
    """
    g_extra = _ema_update(G)
    fake = G(z, c, noise_mode=NOISE_MODE, force_fp32=True, **g_extra)
    logits_fake = D(fake, c, force_fp32=True)
    logits_real = D(real, c, force_fp32=True)
    loss_G = torch.nn.functional.softplus(-logits_fake).mean()
    loss_D = torch.nn.functional.softplus(logits_fake).mean() + torch.nn.functional.softplus(-logits_real).mean()
    g_params = {n: p for n, p in G.named_parameters() if p.requires_grad}
    d_params = {n: p for n, p in D.named_parameters() if p.requires_grad}
    grads_G = torch.autograd.grad(loss_G, list(g_params.values()), retain_graph=True)
    grads_D = torch.autograd.grad(loss_D, list(d_params.values()))
    return loss_G.detach(), loss_D.detach(), dict(zip(g_params, grads_G)), dict(zip(d_params, grads_D))


def train_phases(
    G: torch.nn.Module, D: torch.nn.Module, z: torch.Tensor, c: torch.Tensor, real: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The main phases of one training minibatch as both training loops run them (no optimizer).

    ``Gmain``: only G's parameters require grad; G forward, D on the fakes, backward of the
    non-saturating G loss. ``Dmain``: only D's parameters require grad; the fakes again (no graph
    through G), D on fakes and reals, backward of the D loss. This is StyleGAN2-ADA's
    ``training_loop``/``loss.accumulate_gradients`` without the lazy R1 and path-length phases,
    and ganzoo's ``Trainer.step`` likewise. Gradients accumulate in ``.grad`` (set to None first).
    """
    g_extra = _ema_update(G)
    for net in (G, D):
        for p in net.parameters():
            p.grad = None
    G.requires_grad_(True), D.requires_grad_(False)
    loss_G = torch.nn.functional.softplus(-D(G(z, c, noise_mode=NOISE_MODE, force_fp32=True), c, force_fp32=True))
    loss_G.mean().backward()
    G.requires_grad_(False), D.requires_grad_(True)
    with torch.no_grad():
        fake = G(z, c, noise_mode=NOISE_MODE, force_fp32=True, **g_extra)
    loss_fake = torch.nn.functional.softplus(D(fake, c, force_fp32=True)).mean()
    loss_fake.backward()
    loss_real = torch.nn.functional.softplus(-D(real, c, force_fp32=True)).mean()
    loss_real.backward()
    G.requires_grad_(True)
    return loss_G.detach().mean(), (loss_fake + loss_real).detach()


def set_malloc(mode: str) -> str:
    """``keep``: glibc keeps freed memory for reuse (what ganzoo's training and ``generate`` do,
    :func:`ganzoo._malloc.keep_freed_memory`), for every implementation in this process alike;
    ``system``: the C library's defaults. Returns what is in effect."""
    if mode == "keep":
        sys.path.insert(0, str(REPO_ROOT))
        from ganzoo._malloc import keep_freed_memory

        return "keep (M_MMAP_MAX=0, high M_TRIM_THRESHOLD)" if keep_freed_memory() else "system (keep not available)"
    return "system"


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max())


def _same_names(xs: dict[str, torch.Tensor], ys: dict[str, torch.Tensor]) -> None:
    if set(xs) != set(ys):
        raise SystemExit(f"error: parameter names differ: {sorted(set(xs) ^ set(ys))}")


def max_abs_dict(xs: dict[str, torch.Tensor], ys: dict[str, torch.Tensor]) -> float:
    _same_names(xs, ys)
    return max(max_abs(xs[k], ys[k]) for k in xs)


def max_rel_dict(xs: dict[str, torch.Tensor], ys: dict[str, torch.Tensor]) -> float:
    """Max over tensors of max|x - y| / max|x| (gradients span many orders of magnitude)."""
    _same_names(xs, ys)
    out = 0.0
    for k, x in xs.items():
        scale = float(x.detach().double().abs().max())
        if scale > 0:
            out = max(out, max_abs(x, ys[k]) / scale)
    return out


# ----------------------------------------------------------------------------------------------
# Timing


def timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def run_interleaved(tasks: dict[str, dict[str, Callable[[], Any]]], warmup: int, repeats: int) -> dict:
    """Runs every (task, impl) ``warmup`` times, then ``repeats`` rounds, alternating the order.

    Returns ``{task: {impl: [ms, ...]}}``.
    """
    for task, impls in tasks.items():
        for impl, fn in impls.items():
            for _ in range(warmup):
                print(f"  warm-up {task} / {impl}", flush=True)
                fn()
    times: dict[str, dict[str, list[float]]] = {t: {i: [] for i in impls} for t, impls in tasks.items()}
    for r in range(repeats):
        for task, impls in tasks.items():
            order = list(impls)
            if r % 2:
                order.reverse()
            for impl in order:
                times[task][impl].append(timed(impls[impl]))
        summary = ", ".join(f"{t}: " + "/".join(f"{v[-1]:.0f}" for v in d.values()) for t, d in times.items())
        print(f"  round {r + 1}/{repeats} ms ({summary})", flush=True)
    return times


# ----------------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", required=True, help="stylegan2-ada-pytorch checkout (holds training/networks.py)")
    ap.add_argument("--res", type=int, default=256, help="image resolution (default 256)")
    ap.add_argument("--batch", type=int, default=4, help="batch size (default 4)")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds; the median is reported (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs of each workload first (default 1)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--workdir", help="where the load benchmark writes its files (default: a fresh temp dir)")
    ap.add_argument(
        "--skip", nargs="*", default=[], choices=["forward", "train", "load"], help="workloads to leave out"
    )
    ap.add_argument("--reference-only", action="store_true", help="time the reference alone (ganzoo not needed)")
    ap.add_argument(
        "--quick", action="store_true",
        help="smoke preset: --res 64 --batch 2 --repeats 3 --skip load (explicit values still win)",
    )  # fmt: skip
    ap.add_argument(
        "--ref-fp16", action="store_true",
        help="also time one reference G forward without force_fp32 (float16 blocks on CPU: very slow)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.quick:
        words = argv if argv is not None else sys.argv[1:]

        def given(flag: str) -> bool:
            return any(word == flag or word.startswith(flag + "=") for word in words)

        for flag, value in (("--res", 64), ("--batch", 2), ("--repeats", 3)):
            if not given(flag):
                setattr(args, flag[2:], value)
        if not given("--skip"):
            args.skip = ["load"]

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass

    ref_networks = import_reference(args.reference)
    ganzoo_sg2, ganzoo_ckpt = (None, None) if args.reference_only else import_ganzoo()

    g_kwargs, d_kwargs = paper_kwargs(args.res)
    torch.manual_seed(args.seed)
    ref_G = ref_networks.Generator(**copy.deepcopy(g_kwargs))
    ref_D = ref_networks.Discriminator(**copy.deepcopy(d_kwargs))
    perturb_(ref_G, args.seed + 1)
    perturb_(ref_D, args.seed + 2)
    ref_G_ema = copy.deepcopy(ref_G).eval().requires_grad_(False)
    with torch.no_grad():  # make G_ema differ from G, as in any real snapshot
        gen = torch.Generator().manual_seed(args.seed + 3)
        for p in ref_G_ema.parameters():
            p.add_(0.01 * p.abs().mean() * torch.randn(p.shape, generator=gen))

    print(f"torch {torch.__version__}, {platform.machine()}, threads={torch.get_num_threads()}, "
          f"res={args.res}, batch={args.batch}, repeats={args.repeats}, warmup={args.warmup}")  # fmt: skip
    print(f"G params {count_params(ref_G):,}, D params {count_params(ref_D):,}")

    gen = torch.Generator().manual_seed(args.seed + 4)
    z = torch.randn([args.batch, g_kwargs["z_dim"]], generator=gen)
    c = torch.zeros([args.batch, g_kwargs["c_dim"]])
    real = torch.rand([args.batch, 3, args.res, args.res], generator=gen) * 2 - 1

    results: dict[str, Any] = {
        "config": {"G": g_kwargs, "D": d_kwargs},
        "args": {k: v for k, v in vars(args).items() if k != "json"},
        "torch": torch.__version__,
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "noise_mode": NOISE_MODE,
        "force_fp32": True,
        "agreement": {},
        "timings_ms": {},
        "notes": [],
    }

    # ---- interchangeability and agreement ------------------------------------------------
    nets: dict[str, dict[str, torch.nn.Module]] = {"reference": {"G": ref_G, "D": ref_D, "G_ema": ref_G_ema}}
    if ganzoo_sg2 is not None:
        gz_G = ganzoo_sg2.Generator(**copy.deepcopy(g_kwargs))
        gz_D = ganzoo_sg2.Discriminator(**copy.deepcopy(d_kwargs))
        gz_G_ema = ganzoo_sg2.Generator(**copy.deepcopy(g_kwargs))
        gz_G.load_state_dict(ref_G.state_dict(), strict=True)
        gz_D.load_state_dict(ref_D.state_dict(), strict=True)
        gz_G_ema.load_state_dict(ref_G_ema.state_dict(), strict=True)
        gz_G_ema.eval().requires_grad_(False)
        nets["ganzoo"] = {"G": gz_G, "D": gz_D, "G_ema": gz_G_ema}
        print("load_state_dict(strict=True) of the reference weights into ganzoo's G, D, G_ema: ok")

        ag = results["agreement"]
        with torch.no_grad():
            ref_G_ema.eval()
            ag["G_ema_img"] = max_abs(g_forward(ref_G_ema, z, c), g_forward(gz_G_ema, z, c))
            ag["G_ema_ws"] = max_abs(ref_G_ema.mapping(z, c), gz_G_ema.mapping(z, c))
            ag["G_ema_img_trunc07"] = max_abs(
                ref_G_ema(z, c, truncation_psi=0.7, noise_mode=NOISE_MODE, force_fp32=True),
                gz_G_ema(z, c, truncation_psi=0.7, noise_mode=NOISE_MODE, force_fp32=True),
            )
            ref_D.eval(), gz_D.eval()
            ag["D_logits_real"] = max_abs(ref_D(real, c, force_fp32=True), gz_D(real, c, force_fp32=True))
        # Training step: train mode (non-fused modulated conv in the reference), gradients.
        for n in (ref_G, ref_D, gz_G, gz_D):
            n.train()
        w_avg_ref, w_avg_gz = ref_G.mapping.w_avg.clone(), gz_G.mapping.w_avg.clone()
        lg_r, ld_r, gg_r, gd_r = train_step(ref_G, ref_D, z, c, real)
        lg_z, ld_z, gg_z, gd_z = train_step(gz_G, gz_D, z, c, real)
        ag["train_loss_G"] = max_abs(lg_r, lg_z)
        ag["train_loss_D"] = max_abs(ld_r, ld_z)
        ag["train_grad_G_max_abs"] = max_abs_dict(gg_r, gg_z)
        ag["train_grad_D_max_abs"] = max_abs_dict(gd_r, gd_z)
        ag["train_grad_G_max_rel"] = max_rel_dict(gg_r, gg_z)
        ag["train_grad_D_max_rel"] = max_rel_dict(gd_r, gd_z)
        ag["train_w_avg_update"] = max_abs(ref_G.mapping.w_avg, gz_G.mapping.w_avg)
        with torch.no_grad():  # undo the w_avg update so both stay identical and comparable
            ref_G.mapping.w_avg.copy_(w_avg_ref)
            gz_G.mapping.w_avg.copy_(w_avg_gz)
        del gg_r, gd_r, gg_z, gd_z
        print("max abs difference, reference vs ganzoo (float32, noise_mode='const'):")
        for k, v in ag.items():
            print(f"  {k:24s} {v:.3e}")

    # ---- timed workloads ------------------------------------------------------------------
    for impl_nets in nets.values():
        impl_nets["G_ema"].eval()
        impl_nets["G"].train()
        impl_nets["D"].train()

    tasks: dict[str, dict[str, Callable[[], Any]]] = {}
    if "forward" not in args.skip:
        tasks["G forward (eval, no_grad)"] = {
            impl: (lambda n=n: g_forward(n["G_ema"], z, c)) for impl, n in nets.items()
        }
    if "train" not in args.skip:
        tasks["train step (G fwd + D fwd x2 + bwd)"] = {
            impl: (lambda n=n: train_step(n["G"], n["D"], z, c, real)) for impl, n in nets.items()
        }

    workdir = None
    if "load" not in args.skip:
        workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_stylegan2_"))
        workdir.mkdir(parents=True, exist_ok=True)
        # The reference's snapshot format: pickled persistent networks (eval, no grad, CPU).
        pkl_path = workdir / "reference-networks.pkl"
        snapshot = {k: copy.deepcopy(v).eval().requires_grad_(False).cpu() for k, v in nets["reference"].items()}
        with open(pkl_path, "wb") as f:
            pickle.dump(snapshot, f)
        del snapshot

        def load_reference() -> Any:
            # Our own pickle, written just above by the reference code; never a foreign file.
            with open(pkl_path, "rb") as f:
                return pickle.load(f)

        sizes = {"reference_pickle_bytes": pkl_path.stat().st_size}
        if ganzoo_ckpt is not None:
            ckpt_dir = workdir / "ganzoo-checkpoint"
            if ckpt_dir.exists():
                shutil.rmtree(ckpt_dir)
            gz = nets["ganzoo"]
            ganzoo_ckpt.GAN(gz["G_ema"], G=gz["G"], D=gz["D"]).save(ckpt_dir)
            sizes["ganzoo_safetensors_bytes"] = sum(p.stat().st_size for p in ckpt_dir.glob("*.safetensors"))

            def load_ganzoo_first_time() -> Any:
                # A fresh verification cache: every weight file is hashed in full.
                os.environ["GANZOO_CACHE"] = tempfile.mkdtemp(prefix="bench_ganzoo_cache_")
                return ganzoo_ckpt.GAN.load(ckpt_dir)

            def load_ganzoo_again() -> Any:
                os.environ["GANZOO_CACHE"] = str(workdir / "ganzoo-cache")
                return ganzoo_ckpt.GAN.load(ckpt_dir)

            tasks["load G+G_ema+D (sha256 remembered)"] = {"reference": load_reference, "ganzoo": load_ganzoo_again}
            tasks["load G+G_ema+D (first time, full sha256)"] = {
                "reference": load_reference,
                "ganzoo": load_ganzoo_first_time,
            }
            tasks["load G+G_ema+D (verify=False)"] = {
                "reference": load_reference,
                "ganzoo": lambda: ganzoo_ckpt.GAN.load(ckpt_dir, verify=False),
            }
            results["notes"].append(
                "ganzoo load = ganzoo.checkpoint.GAN.load; 'sha256 remembered': the files were verified "
                "before and are unchanged (stat identity incl. ctime), 'first time': full sha256 of 282 MiB"
            )
        results["file_sizes"] = sizes
        print("load benchmark files: " + ", ".join(f"{k}={v / 2**20:.1f} MiB" for k, v in sizes.items()))
        results["notes"].append(
            "reference load = pickle.load of the reference's own pickle.dump of its persistent networks; "
            "the network module source in the pickle is already imported in this process, so it is not re-executed"
        )

    print(f"timing ({args.warmup} warm-up, {args.repeats} rounds, interleaved) ...", flush=True)
    times = run_interleaved(tasks, args.warmup, args.repeats)

    if args.ref_fp16 and "forward" not in args.skip:
        def ref_fwd_fp16() -> Any:
            with torch.no_grad():
                return nets["reference"]["G_ema"](z, c, noise_mode=NOISE_MODE)  # float16 blocks, on CPU

        print("timing one reference G forward without force_fp32 (float16 blocks on CPU) ...", flush=True)
        times["G forward, reference fp16 blocks (1 run)"] = {"reference": [timed(ref_fwd_fp16)]}

    # ---- report ---------------------------------------------------------------------------
    rows = []
    for task, d in times.items():
        row = {"task": task}
        for impl, ts in d.items():
            row[f"{impl}_ms"] = statistics.median(ts)
            row[f"{impl}_best_ms"] = min(ts)
            row[f"{impl}_all_ms"] = ts
        if "reference_ms" in row and "ganzoo_ms" in row:
            row["ratio_ganzoo_over_reference"] = row["ganzoo_ms"] / row["reference_ms"]
            row["best_ratio_ganzoo_over_reference"] = row["ganzoo_best_ms"] / row["reference_best_ms"]
        rows.append(row)
    results["timings_ms"] = rows

    width = max(len(r["task"]) for r in rows)
    print()
    print(f"{'workload':{width}s}  {'reference ms':>12s}  {'ganzoo ms':>10s}  {'ganzoo/ref':>10s}  "
          f"{'best-of ratio':>13s}")  # fmt: skip
    print(f"{'-' * width}  {'-' * 12}  {'-' * 10}  {'-' * 10}  {'-' * 13}")
    for r in rows:
        ref_ms = f"{r['reference_ms']:.1f}" if "reference_ms" in r else "-"
        gz_ms = f"{r['ganzoo_ms']:.1f}" if "ganzoo_ms" in r else "-"
        ratio = f"{r['ratio_ganzoo_over_reference']:.2f}" if "ratio_ganzoo_over_reference" in r else "-"
        best = f"{r['best_ratio_ganzoo_over_reference']:.2f}" if "best_ratio_ganzoo_over_reference" in r else "-"
        print(f"{r['task']:{width}s}  {ref_ms:>12s}  {gz_ms:>10s}  {ratio:>10s}  {best:>13s}")
    print(f"(median of {args.repeats}; best-of: fastest runs, steadier on a busy machine; batch {args.batch}, "
          f"{args.res}x{args.res}, {torch.get_num_threads()} threads, "
          f"force_fp32=True, noise_mode='{NOISE_MODE}')")  # fmt: skip
    for note in results["notes"]:
        print(f"note: {note}")

    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if workdir is not None and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
