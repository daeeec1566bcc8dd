#!/usr/bin/env python
"""Side-by-side CPU benchmark: ganzoo's BigGAN networks and training step vs BigGAN-PyTorch.

The reference (ajbrock/BigGAN-PyTorch, MIT: ``BigGAN.py``, ``layers.py``, ``losses.py``,
``train_fns.py``, ``utils.py``) is not part of ganzoo and is never shipped with it; it is imported
at run time from a local checkout (``--reference``, default ``/tmp/biggan-ref``). If that directory
does not exist and ``--mirror`` names a bare git mirror of the repository, the mirror's HEAD is
exported there first (``git --git-dir=MIRROR archive HEAD | tar -x -C DIR``).

Configuration: the release's 128x128 ImageNet run, ``scripts/launch_BigGAN_bs256x8.sh``, parsed
by the reference's own ``utils.prepare_parser()`` (G_ch = D_ch = 96, dim_z 120, shared_dim 128,
hier, G_shared, attention at 64 in G and D, 1000 classes, SN_eps 1e-6, BN_eps 1e-5, one power
iteration of one singular vector, in-place ReLU, Adam lr 1e-4 / 4e-4, betas (0, 0.999), eps
1e-6, one D step, EMA 0.9999), with one gradient accumulation of ``--batch`` images per step
instead of 8 x 256. ganzoo's networks are built from the same ``config`` dict (ganzoo takes the
release's keys) and get the reference's state dicts with ``load_state_dict(strict=True)``.

1. Agreement (max abs differences printed): G_ema images in eval mode; D logits in eval and train
   mode; one D hinge-loss step and one G step computed by the reference (``G_D`` + ``losses``)
   and by ganzoo's ``BigGANLoss.accumulate('Dmain' / 'Gmain')`` on the same z, classes and
   reals: losses, gradients (max relative to each tensor's largest entry), and the
   spectral-norm vectors / batch-norm statistics the train-mode forwards store.
2. Timing, interleaved (reference, ganzoo, ganzoo, reference, ...) after warm-up, median of
   ``--reps`` runs:

   * ``G_ema forward``: eval mode, ``torch.no_grad()``, ``G(z, G.shared(y))``, batch ``--batch``;
   * ``train step``: reference: ``train_fns.GAN_training_function`` (its ``train(x, y)``: toggles
     requires_grad, one D step on fakes + reals concatenated with the hinge loss, Adam step, then
     one G step, Adam step, then its ``utils.ema`` update of G_ema); ganzoo:
     ``ganzoo.train.loop.Trainer.step()`` with ``aug='none'`` and the biggan plug-in's release
     settings, i.e. what a user of ``ganzoo finetune`` gets per minibatch: the same two phases
     through ``BigGANLoss`` plus the loop's own work (drawing the reals from uint8 images and the
     classes from the data set, ``nan_to_num`` of every gradient, loss/r_t statistics, G_ema
     update, which also copies G's buffers);
   * ``train phases`` (``--phases``): ganzoo's ``BigGANLoss`` phases driven by hand (requires_grad
     toggles, ``accumulate``, Adam step, the same EMA), without the loop's extras, vs the same
     reference ``train(x, y)``.

3. A table: reference ms, ganzoo ms, ratio ganzoo / reference (medians; also of the fastest runs).

Usage::

    python scripts/bench_biggan.py [--resolution 128] [--batch 8] [--reps 5] [--threads 2] [--json OUT]
    python scripts/bench_biggan.py --quick          # 64x64, G_ch = D_ch = 32, 2 reps

On a shared machine the timings move with the load: compare the ratios within one run.
Timings are informational; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import types
from pathlib import Path
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The timing and comparison helpers of the StyleGAN2 side-by-side benchmark.
from bench_stylegan2 import count_params, max_abs, run_interleaved  # noqa: E402

DEFAULT_REFERENCE = "/tmp/biggan-ref"
DEFAULT_MIRROR = "/work/.mirror/ajbrock+BigGAN-PyTorch/repo"

# scripts/launch_BigGAN_bs256x8.sh of the release, minus data loading, parallelism and logging.
LAUNCH_ARGS = """
--dataset I128_hdf5 --shuffle --batch_size 256
--num_G_accumulations 8 --num_D_accumulations 8
--num_D_steps 1 --G_lr 1e-4 --D_lr 4e-4 --D_B2 0.999 --G_B2 0.999
--G_attn 64 --D_attn 64
--G_nl inplace_relu --D_nl inplace_relu
--SN_eps 1e-6 --BN_eps 1e-5 --adam_eps 1e-6
--G_ortho 0.0
--G_shared
--G_init ortho --D_init ortho
--hier --dim_z 120 --shared_dim 128
--G_eval_mode
--G_ch 96 --D_ch 96
--ema --use_ema --ema_start 20000
--seed 0
""".split()


# ----------------------------------------------------------------------------------------------
# Setup


def ensure_reference(path: str, mirror: str | None) -> Path:
    ref = Path(path)
    if not (ref / "BigGAN.py").is_file():
        if not mirror or not Path(mirror).exists():
            sys.exit(f"error: --reference {path}: no BigGAN.py there, and no --mirror to export it from")
        ref.mkdir(parents=True, exist_ok=True)
        print(f"exporting {mirror} HEAD to {ref}", flush=True)
        archive = subprocess.run(["git", "--git-dir", mirror, "archive", "HEAD"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(ref)], input=archive.stdout, check=True)
    return ref.resolve()


def import_reference(ref: Path) -> types.SimpleNamespace:
    """The reference's modules. Its ``utils`` imports ``datasets``, which imports ``h5py`` at the
    top (for its HDF5 data sets, unused here); a stand-in module is registered when h5py is not
    installed."""
    try:
        import h5py  # noqa: F401
    except ImportError:
        sys.modules["h5py"] = types.ModuleType("h5py")
    sys.path.insert(0, str(ref))
    try:
        import BigGAN  # type: ignore[import-not-found]
        import losses  # type: ignore[import-not-found]
        import train_fns  # type: ignore[import-not-found]
        import utils  # type: ignore[import-not-found]
    except Exception as exc:  # noqa: BLE001 - report anything the foreign code raises
        sys.exit(f"error: importing the reference from {ref} failed: {type(exc).__name__}: {exc}")
    return types.SimpleNamespace(BigGAN=BigGAN, losses=losses, train_fns=train_fns, utils=utils)


def reference_config(ref: types.SimpleNamespace, args: argparse.Namespace) -> dict:
    """The launch script's config as the reference's train.py completes it."""
    words = list(LAUNCH_ARGS)
    words[words.index("--G_ch") + 1] = str(args.ch)
    words[words.index("--D_ch") + 1] = str(args.ch)
    config = vars(ref.utils.prepare_parser().parse_args(words))
    config["resolution"] = args.resolution  # train.py: utils.imsize_dict[dataset]
    config["n_classes"] = 1000  # utils.nclass_dict['I128_hdf5']
    config["batch_size"] = args.batch  # one accumulation of --batch images per step
    config["num_G_accumulations"] = config["num_D_accumulations"] = 1
    config["skip_init"] = True  # weights are orthogonal-initialized below, once, and copied
    return config


def perturb_(G: torch.nn.Module, D: torch.nn.Module, seed: int) -> None:
    """Makes every parameter and buffer matter: attention gains (0 at init), BN statistics
    (0 / 1 at init) and gains, biases."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for net in (G, D):
            for name, t in list(net.named_parameters()) + list(net.named_buffers()):
                if name.endswith("gamma"):
                    t.copy_(0.5 + 0.2 * torch.randn(t.shape, generator=gen))
                elif name.endswith(("stored_mean", "output_layer.0.bias")):
                    t.add_(0.1 * torch.randn(t.shape, generator=gen))
                elif name.endswith(("stored_var", "output_layer.0.gain")):
                    t.mul_(0.75 + 0.5 * torch.rand(t.shape, generator=gen))
                elif name.endswith("bias") and t.ndim == 1:
                    t.add_(0.05 * torch.randn(t.shape, generator=gen))






def max_rel_grads(ref: torch.nn.Module, gz: torch.nn.Module) -> tuple[float, float, str]:
    """Of the two networks' ``.grad``: (max abs difference, max over tensors of max|a - b| /
    max|a|, the tensor where that is largest). Tensors whose gradient is below 1e-3 of the
    network's largest are left out of the relative figure: those are rounding noise around a
    gradient that is 0 in exact arithmetic (a convolution's bias in front of a batch norm in
    train mode), where any change of rounding is 100 %."""
    gz_params = dict(gz.named_parameters())
    pairs = []
    for name, p in ref.named_parameters():
        a, b = p.grad, gz_params[name].grad
        if a is None and b is None:
            continue
        pairs.append((name, torch.zeros_like(p) if a is None else a, torch.zeros_like(p) if b is None else b))
    top = max(float(a.abs().max()) for _, a, _ in pairs)
    print(f"  largest {type(ref).__name__} gradient entry: {top:.3e}")
    worst_abs = worst_rel = 0.0
    worst = ""
    for name, a, b in pairs:
        diff = max_abs(a, b)
        worst_abs = max(worst_abs, diff)
        scale = float(a.abs().max())
        if scale >= 1e-3 * top and diff / scale > worst_rel:
            worst_rel, worst = diff / scale, name
    return worst_abs, worst_rel, worst


def max_abs_buffers(ref: torch.nn.Module, gz: torch.nn.Module) -> float:
    gz_buffers = dict(gz.named_buffers())
    return max(max_abs(b, gz_buffers[name]) for name, b in ref.named_buffers())


# ----------------------------------------------------------------------------------------------
# Timing






# ----------------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", default=DEFAULT_REFERENCE, help=f"BigGAN-PyTorch checkout (default {DEFAULT_REFERENCE})")
    ap.add_argument("--mirror", default=DEFAULT_MIRROR if Path(DEFAULT_MIRROR).exists() else None,
                    help="bare git mirror to export --reference from when it does not exist")  # fmt: skip
    ap.add_argument("--resolution", type=int, default=128, choices=[32, 64, 128, 256], help="(default 128)")
    ap.add_argument("--ch", type=int, default=96, help="G_ch = D_ch (default 96, the release's)")
    ap.add_argument("--batch", type=int, default=8, help="G forward batch and D/G step batch (default 8)")
    ap.add_argument("--reps", type=int, default=5, help="timed rounds; the median is reported (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs of each workload first (default 1)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--phases", action="store_true", help="also time ganzoo's BigGANLoss phases driven by hand")
    ap.add_argument("--skip", nargs="*", default=[], choices=["forward", "train"], help="workloads to leave out")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--quick", action="store_true",
                    help="smoke preset: --resolution 64 --ch 32 --batch 4 --reps 2 (explicit values still win)")  # fmt: skip
    args = ap.parse_args(argv)
    words = argv if argv is not None else sys.argv[1:]
    if args.quick:
        for flag, value in (("--resolution", 64), ("--ch", 32), ("--batch", 4), ("--reps", 2)):
            if not any(w == flag or w.startswith(flag + "=") for w in words):
                setattr(args, flag[2:], value)

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass

    sys.path.insert(0, str(REPO_ROOT))
    from ganzoo.architectures import get_architecture
    from ganzoo.architectures.biggan import networks as gz_networks
    from ganzoo.architectures.biggan.objective import BigGANLoss
    from ganzoo.train.dataset import TrainingImages
    from ganzoo.train.loop import Trainer, TrainingOptions

    ref = import_reference(ensure_reference(args.reference, args.mirror))
    config = reference_config(ref, args)
    B, res = args.batch, args.resolution

    # ---- networks -----------------------------------------------------------------------
    torch.manual_seed(args.seed)
    ref_config = {**config, "G_activation": ref.utils.activation_dict[config["G_nl"]],
                  "D_activation": ref.utils.activation_dict[config["D_nl"]]}  # fmt: skip
    ref_G = ref.BigGAN.Generator(**ref_config)
    ref_D = ref.BigGAN.Discriminator(**ref_config)
    ref_G_ema = ref.BigGAN.Generator(**{**ref_config, "no_optim": True})
    gz_networks._initialize(ref_G, "ortho")  # the release's init (skip_init above: done once, here)
    gz_networks._initialize(ref_D, "ortho")
    perturb_(ref_G, ref_D, args.seed + 1)
    ema = ref.utils.ema(ref_G, ref_G_ema, config["ema_decay"], config["ema_start"])  # copies G into G_ema
    with torch.no_grad():  # G_ema differs from G, as in any real snapshot
        gen = torch.Generator().manual_seed(args.seed + 2)
        for p in ref_G_ema.parameters():
            p.add_(0.01 * p.abs().mean() * torch.randn(p.shape, generator=gen))
    ref_GD = ref.BigGAN.G_D(ref_G, ref_D)

    gz_G = gz_networks.Generator(**config)
    gz_D = gz_networks.Discriminator(**config)
    gz_G_ema = gz_networks.Generator(**config)
    gz_G.load_state_dict(ref_G.state_dict(), strict=True)
    gz_D.load_state_dict(ref_D.state_dict(), strict=True)
    gz_G_ema.load_state_dict(ref_G_ema.state_dict(), strict=True)
    print("load_state_dict(strict=True) of the reference's G, D, G_ema into ganzoo's (built from the same config): ok")

    print(f"torch {torch.__version__}, {platform.machine()}, {platform.processor() or platform.platform()}, "
          f"{os.cpu_count()} CPUs, threads={torch.get_num_threads()}, interop={torch.get_num_interop_threads()}, "
          f"mkldnn={torch.backends.mkldnn.is_available()}")  # fmt: skip
    print(f"{res}x{res}, G_ch=D_ch={args.ch}, dim_z {ref_G.dim_z}, batch {B}, reps {args.reps}, warm-up {args.warmup}; "
          f"G params {count_params(ref_G):,}, D params {count_params(ref_D):,}")  # fmt: skip

    gen = torch.Generator().manual_seed(args.seed + 3)
    z = torch.randn([B, ref_G.dim_z], generator=gen)
    y = torch.randint(0, 1000, [B], generator=gen)
    images_u8 = (torch.rand([4 * B, 3, res, res], generator=gen) * 255).to(torch.uint8)
    labels = torch.randint(0, 1000, [4 * B], generator=gen)
    x = images_u8[:B].float() / 127.5 - 1
    y_real = labels[:B]

    def onehot(t: torch.Tensor) -> torch.Tensor:
        return F.one_hot(t, 1000).float()

    results: dict[str, Any] = {"args": vars(args), "config": {k: v for k, v in config.items() if k in (
        "G_ch", "D_ch", "dim_z", "shared_dim", "hier", "G_attn", "D_attn", "SN_eps", "BN_eps", "G_lr", "D_lr",
        "adam_eps", "G_B2", "D_B2", "ema_decay", "num_D_steps")}, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "agreement": {}}  # fmt: skip

    # ---- agreement ------------------------------------------------------------------------
    ag = results["agreement"]
    with torch.no_grad():
        ref_G_ema.eval(), gz_G_ema.eval()
        ag["G_ema images (eval)"] = max_abs(ref_G_ema(z, ref_G_ema.shared(y)), gz_G_ema(z, gz_G_ema.shared(y)))
        ref_D.eval(), gz_D.eval()
        ag["D logits (eval)"] = max_abs(ref_D(x, y_real), gz_D(x, y_real))
        ref_D.train(), gz_D.train()
        ag["D logits (train: SN stores u)"] = max_abs(ref_D(x, y_real), gz_D(x, y_real))
    # One D step's and one G step's losses and gradients, same inputs.
    for net in (ref_G, ref_D, gz_G, gz_D):
        net.train().zero_grad(set_to_none=True)
    loss = BigGANLoss(gz_G, gz_D)
    ref.utils.toggle_grad(ref_D, True), ref.utils.toggle_grad(ref_G, False)
    gz_D.requires_grad_(True), gz_G.requires_grad_(False)
    D_fake, D_real = ref_GD(z, y, x, y_real, train_G=False, split_D=False)
    loss_real, loss_fake = ref.losses.discriminator_loss(D_fake, D_real)
    (loss_real + loss_fake).backward()
    stats = loss.accumulate("Dmain", x, onehot(y_real), z, onehot(y), 1.0, torch.Generator())
    ag["D hinge loss"] = abs(float((loss_real + loss_fake).detach()) * B - stats.loss_sum) / B
    ag["D grads (abs)"], ag["D grads (rel)"], worst_D = max_rel_grads(ref_D, gz_D)
    ref.utils.toggle_grad(ref_D, False), ref.utils.toggle_grad(ref_G, True)
    gz_D.requires_grad_(False), gz_G.requires_grad_(True)
    D_fake = ref_GD(z, y, train_G=True, split_D=False)
    G_loss = ref.losses.generator_loss(D_fake)
    G_loss.backward()
    stats = loss.accumulate("Gmain", None, None, z, onehot(y), 1.0, torch.Generator())
    ag["G loss"] = abs(float(G_loss.detach()) - stats.loss_sum / stats.loss_count)
    ag["G grads (abs)"], ag["G grads (rel)"], worst_G = max_rel_grads(ref_G, gz_G)
    ag["G buffers after (u, sv, BN stats)"] = max_abs_buffers(ref_G, gz_G)
    ag["D buffers after (u, sv)"] = max_abs_buffers(ref_D, gz_D)
    for net in (ref_G, ref_D, gz_G, gz_D):
        net.zero_grad(set_to_none=True)
        net.requires_grad_(True)
    print("max abs difference, reference vs ganzoo (float32):")
    for k, v in ag.items():
        print(f"  {k:36s} {v:.3e}")
    print(f"  (grads rel: max |diff| / max |grad| per tensor, worst D: {worst_D}, worst G: {worst_G}; tensors with "
          "gradients under 1e-3 of the network's largest, 0 in exact arithmetic, left out)")
    print("  (G's weight gradients pass train-mode batch norm at a small batch and are ill-conditioned: the reference's "
          "own float32 gradients differ from its float64 ones by 4e-4 to 9e-3 of a tensor's largest entry, "
          "measured at 64x64, G_ch 32, batch 4, three seeds; ganzoo in float64 matches it to 1e-14)")

    # ---- the training steps -----------------------------------------------------------------
    state_dict = {"itr": config["ema_start"] + 1, "epoch": 0, "save_num": 0, "best_IS": 0, "best_FID": 999999,
                  "config": config}  # past the EMA start: G_ema averages  # fmt: skip
    ref_z, ref_y = ref.utils.prepare_z_y(B, ref_G.dim_z, config["n_classes"], device="cpu", fp16=False,
                                         z_var=config["z_var"])  # fmt: skip
    ref_train = ref.train_fns.GAN_training_function(ref_G, ref_D, ref_GD, ref_z, ref_y, ema, state_dict, config)

    def reference_step() -> Any:
        ref_G.train(), ref_D.train()
        return ref_train(x, y_real)

    arch = get_architecture("biggan")
    options = TrainingOptions(batch=B, aug="none", seed=args.seed,
                              **{**arch.training_defaults(gz_G.init_kwargs, B), "ema_start_kimg": 0.0})  # fmt: skip
    data = TrainingImages(images_u8, "<bench>", "0" * 64, labels=onehot(labels))
    trainer = Trainer(gz_G, gz_G_ema, gz_D, data, options)
    for name, opt in trainer.optimizers.items():
        g = opt.param_groups[0]
        ref_opt = (ref_G if name == "G" else ref_D).optim.param_groups[0]
        assert (g["lr"], tuple(g["betas"]), g["eps"]) == (ref_opt["lr"], tuple(ref_opt["betas"]), ref_opt["eps"]), name
    print(f"optimizers: Adam G lr {config['G_lr']}, D lr {config['D_lr']}, betas (0, 0.999), eps {config['adam_eps']} "
          f"on both sides; EMA decay {config['ema_decay']} (past its start) on both sides")  # fmt: skip

    # ganzoo's phases by hand (no loop): the same networks, own optimizers with the same settings.
    hand_opts = {n: torch.optim.Adam(net.parameters(), lr=lr, betas=(0.0, 0.999), eps=config["adam_eps"])
                 for n, net, lr in (("G", gz_G, config["G_lr"]), ("D", gz_D, config["D_lr"]))}  # fmt: skip
    hand_gen = torch.Generator().manual_seed(args.seed + 4)

    def ganzoo_phases() -> Any:
        for phase, net in (("Dmain", gz_D), ("Gmain", gz_G)):
            zz = torch.randn([B, gz_G.dim_z], generator=hand_gen)
            yy = onehot(torch.randint(0, 1000, [B], generator=hand_gen))
            net.requires_grad_(True)
            hand_opts[phase[0]].zero_grad(set_to_none=True)
            trainer.loss.accumulate(phase, x if phase == "Dmain" else None, onehot(y_real), zz, yy, 1.0, hand_gen)
            net.requires_grad_(False)
            hand_opts[phase[0]].step()
        with torch.no_grad():
            for p_ema, p in zip(gz_G_ema.parameters(), gz_G.parameters()):
                p_ema.lerp_(p, 1 - config["ema_decay"])

    # ---- timed workloads --------------------------------------------------------------------
    ref_G_ema.eval(), gz_G_ema.eval()

    def forward(G: torch.nn.Module) -> Callable[[], Any]:
        def run() -> Any:
            with torch.no_grad():
                return G(z, G.shared(y))

        return run

    tasks: dict[str, dict[str, Callable[[], Any]]] = {}
    if "forward" not in args.skip:
        tasks[f"G_ema forward, batch {B} (eval, no_grad)"] = {"reference": forward(ref_G_ema), "ganzoo": forward(gz_G_ema)}
    if "train" not in args.skip:
        tasks[f"train step, batch {B} (ganzoo: Trainer.step)"] = {"reference": reference_step, "ganzoo": trainer.step}
    if args.phases:
        tasks[f"train step, batch {B} (ganzoo: BigGANLoss phases)"] = {"reference": reference_step, "ganzoo": ganzoo_phases}

    if not tasks:
        return 0
    print(f"timing ({args.warmup} warm-up, {args.reps} rounds, interleaved) ...", flush=True)
    times = run_interleaved(tasks, args.warmup, args.reps)

    # ---- report -----------------------------------------------------------------------------
    rows = []
    for task, d in times.items():
        row: dict[str, Any] = {"task": task}
        for impl, ts in d.items():
            row[f"{impl}_ms"], row[f"{impl}_best_ms"], row[f"{impl}_all_ms"] = statistics.median(ts), min(ts), ts
        row["ratio"] = row["ganzoo_ms"] / row["reference_ms"]
        row["best_ratio"] = row["ganzoo_best_ms"] / row["reference_best_ms"]
        rows.append(row)
    results["timings_ms"] = rows
    width = max(len(r["task"]) for r in rows)
    print()
    print(f"{'workload':{width}s}  {'reference ms':>12s}  {'ganzoo ms':>10s}  {'ganzoo/ref':>10s}  {'best-of ratio':>13s}")
    print(f"{'-' * width}  {'-' * 12}  {'-' * 10}  {'-' * 10}  {'-' * 13}")
    for r in rows:
        print(f"{r['task']:{width}s}  {r['reference_ms']:12.1f}  {r['ganzoo_ms']:10.1f}  {r['ratio']:10.2f}  "
              f"{r['best_ratio']:13.2f}")  # fmt: skip
    print(f"(median of {args.reps}; {res}x{res}, G_ch=D_ch={args.ch}, {torch.get_num_threads()} threads, float32, "
          f"torch {torch.__version__}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())})")  # fmt: skip
    print("note: ganzoo's Trainer.step also draws the reals (uint8 -> float) and classes from the data set, "
          "runs nan_to_num on every gradient, keeps loss/r_t statistics and copies G's buffers into G_ema; "
          "the reference's train(x, y) is given float reals and draws z, y from its own distributions")
    print("command: python " + " ".join(shlex.quote(w) for w in [sys.argv[0], *words]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
