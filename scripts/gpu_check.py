#!/usr/bin/env python
"""One prepared GPU check: ganzoo against the reference implementations, on one card, in one run.

    python scripts/gpu_check.py --out DIR [--sg2-ref PATH] [--sg3-ref PATH] [--biggan-ref PATH] [--budget 480]
    python scripts/gpu_check.py --dry-run --out DIR    # tiny configs on CPU (the default test suite runs this)

Writes ``DIR/gpu_check.json`` (everything measured) and ``DIR/gpu_check.md`` (the tables). The
parts, each with a share of ``--budget`` seconds (a part past its share stops at the next round
and says so; the others still run):

* ``exactness``: the fixture tests on the card (``GANZOO_TEST_DEVICE``, TF32 off through
  ``NVIDIA_TF32_OVERRIDE=0``; fixtures from ``GANZOO_FIXTURES``), and a compiled generator
  (inductor/Triton) against the eager one, within the fixtures' 1e-4;
* ``train_stylegan2``: StyleGAN2-ADA ``paper256`` (8 mapping layers, channel_base 16384, fp16 in
  the 4 highest-resolution blocks, conv_clamp 256, minibatch-std group 8, gamma 1, EMA 20 kimg)
  at batch 32 with ADA ('bgc', p 0.2): s/kimg and peak memory of ganzoo eager, ganzoo compiled and
  the NVlabs reference (its ``StyleGAN2Loss`` and ``AugmentPipe`` driven minibatch by minibatch as
  its training loop does; whether its custom CUDA ops were built or it ran its reference
  path is recorded), the same weights, timed in interleaved rounds of 16 minibatches (one lazy
  regularization cycle) after a warm-up cycle each;
* ``train_stylegan3``: StyleGAN3-T at 256², batch 16, the same way against stylegan3's loop;
* ``train_biggan``: BigGAN 128² (the release's ``launch_BigGAN_bs256x8.sh`` networks, G_ch 96),
  batch 32: ganzoo's ``Trainer.step`` against BigGAN-PyTorch's ``GAN_training_function``;
* ``generate``: generator img/s at 256² (batch 32) and 1024² (batch 8), fp16 and fp32, ganzoo
  against the reference's ``G(z, c, noise_mode='const')``.

A reference is a checkout of the upstream repository (only its code is used; nothing of it is
part of ganzoo), given by path; a part whose reference is not given times ganzoo alone and says
so. ``scripts/gpu_check_prepare.sh`` puts the references, the fixtures and the wheels the device
lacks into ``.gpu/`` (git-ignored) for the device tool to carry; the README's Benchmarks section
says how to run it there.

Timings are informational; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
try:
    import ganzoo  # noqa: F401  (installed: pip install -e . on the device, see gpu_check_prepare.sh)
except ImportError:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from ganzoo.architectures import get_architecture  # noqa: E402
from ganzoo.train.dataset import ProceduralImages  # noqa: E402
from ganzoo.train.loop import Trainer, TrainingOptions  # noqa: E402
from reference_code import ReferenceLoop, import_modules  # noqa: E402  (scripts/reference_code.py)

#: Each part's share of the budget (fractions of --budget).
SHARES = {"exactness": 0.25, "train_stylegan2": 0.3, "train_stylegan3": 0.15, "train_biggan": 0.15, "generate": 0.15}
#: The fixture tests run on the card (each holds its own tolerance; 1e-4 or tighter). Their
#: fixtures travel in .gpu/fixtures (scripts/gpu_check_prepare.sh), under the device tool's
#: 64 MiB with the working tree: GP-GAN's are left out.
FIXTURE_TESTS = ["tests/test_stylegan2.py", "tests/test_stylegan3.py", "tests/test_biggan.py",
                 "tests/test_loss_reference.py", "tests/test_augment.py"]  # fmt: skip
EXACT_TOL = 1e-4
#: BigGAN-PyTorch's launch_BigGAN_bs256x8.sh networks (ImageNet 128², 1000 classes), in the
#: release's keys, which ganzoo's BigGAN networks take.
RELEASE_BIGGAN = {"n_classes": 1000, "dim_z": 120, "shared_dim": 128, "hier": True, "G_shared": True,
                  "G_attn": "64", "D_attn": "64", "G_nl": "inplace_relu", "D_nl": "inplace_relu", "SN_eps": 1e-6,
                  "BN_eps": 1e-5, "adam_eps": 1e-6, "G_lr": 1e-4, "D_lr": 4e-4, "G_B2": 0.999, "D_B2": 0.999,
                  "G_init": "ortho", "D_init": "ortho", "num_D_steps": 1, "ema_decay": 0.9999, "ema_start": 20000}  # fmt: skip


class Budget:
    """Seconds left to one part."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


class Context:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.dry = args.dry_run
        self.device = torch.device("cpu" if args.dry_run else args.device)
        self.cuda = self.device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_mib(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.device) / 2**20 if self.cuda else None


# ----------------------------------------------------------------------------------------------
# Timing


def interleaved(ctx: Context, steps: dict[str, Callable[[], Any]], budget: Budget, per_round: int,
                max_rounds: int) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Warms every candidate up with one round, then times rounds of ``per_round`` calls,
    alternating the order, until ``max_rounds`` or the budget; per candidate the median seconds
    per call, the rounds timed, and the peak memory of its timed rounds."""
    stats: dict[str, dict[str, Any]] = {name: {"times": [], "peak_mib": None} for name in steps}
    for name, step in steps.items():
        start = time.perf_counter()
        for _ in range(per_round):
            step()
        ctx.sync()
        stats[name]["warmup_s"] = round(time.perf_counter() - start, 2)
        print(f"  warm-up {name}: {stats[name]['warmup_s']} s", flush=True)
    for r in range(max_rounds):
        if budget.left() <= 0:
            break
        order = list(steps) if r % 2 == 0 else list(reversed(steps))
        for name in order:
            ctx.reset_peak()
            ctx.sync()
            start = time.perf_counter()
            for _ in range(per_round):
                steps[name]()
            ctx.sync()
            stats[name]["times"].append((time.perf_counter() - start) / per_round)
            peak = ctx.peak_mib()
            if peak is not None:
                stats[name]["peak_mib"] = max(peak, stats[name]["peak_mib"] or 0)
        print(f"  round {r + 1}: " + ", ".join(f"{n} {stats[n]['times'][-1] * 1e3:.1f} ms" for n in steps), flush=True)
    for s in stats.values():
        s["rounds"] = len(s["times"])
        s["s_per_call"] = statistics.median(s["times"]) if s["times"] else None
    return stats


def _rows(stats: dict[str, dict[str, Any]], batch: int, reference: str | None, unit: str) -> list[dict[str, Any]]:
    ref_s = stats.get(reference, {}).get("s_per_call") if reference else None
    rows = []
    for name, s in stats.items():
        sec = s["s_per_call"]
        row: dict[str, Any] = {"candidate": name, "rounds": s["rounds"], "warmup_s": s["warmup_s"],
                               "peak_mib": None if s["peak_mib"] is None else round(s["peak_mib"])}  # fmt: skip
        if sec is not None:
            row["s_per_kimg" if unit == "train" else "img_per_s"] = round(sec * 1000 / batch if unit == "train" else batch / sec, 3)
            row["speedup_vs_ref"] = round(ref_s / sec, 3) if ref_s and name != reference else None
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# References (imported from a checkout given by path; never part of ganzoo)


def _import_from(path: str | None, *modules: str) -> types.SimpleNamespace | None:
    """``modules`` of the reference checkout at ``path``, or None without a path."""
    return import_modules(path, *modules) if path else None


def _custom_ops_state(ref: types.SimpleNamespace) -> str:
    """Whether the reference's CUDA plug-ins (bias_act, upfirdn2d) built, or it runs its
    reference path."""
    try:
        from torch_utils.ops import bias_act, upfirdn2d  # type: ignore[import-not-found]

        built = [bool(bias_act._init()), bool(upfirdn2d._init())]
    except Exception as exc:  # noqa: BLE001 - anything the foreign code raises is the answer
        return f"custom ops unavailable ({type(exc).__name__}: {exc}); reference path"
    return "custom CUDA ops built" if all(built) else "reference path (custom ops did not build)"


def _real_images(ctx: Context, batch: int, res: int, classes: int = 0) -> tuple[ProceduralImages, torch.Tensor]:
    """Random uint8 "reals" (with one-hot labels of ``classes`` classes, if any): ganzoo's loop
    draws them as from a data set, the reference gets one batch on the device (no data loading
    on either side)."""
    pool = torch.from_numpy(np.random.RandomState(0).randint(0, 256, [max(4 * batch, 16), 3, res, res]).astype(np.uint8))

    def labels(indices):
        return torch.nn.functional.one_hot(torch.from_numpy(indices % classes), classes).to(torch.float32)

    def render(indices):
        return pool[torch.from_numpy(indices % len(pool))], labels(indices) if classes else None

    real = (pool[:batch].to(ctx.device).float() / 127.5 - 1)
    return ProceduralImages(render, res, 3, "gpu-check", {"res": res}, label_fn=labels if classes else None), real


def _ganzoo_trainers(ctx: Context, G, D, data, batch: int, family: str, compiled: bool, **options) -> dict[str, Callable]:
    out = {}
    for name, flag in (("ganzoo eager", False), ("ganzoo compiled", True)):
        if flag and not compiled:
            continue
        opts = TrainingOptions.for_architecture(get_architecture(family), G.init_kwargs, batch, compile=flag, **options)
        trainer = Trainer(copy.deepcopy(G), copy.deepcopy(G), copy.deepcopy(D), data, opts, device=ctx.device)
        out[name] = trainer.step
    return out


# ----------------------------------------------------------------------------------------------
# Parts


def part_train_stylegan2(ctx: Context, budget: Budget) -> dict[str, Any]:
    from ganzoo.architectures.stylegan2.networks import Discriminator, Generator

    res, batch, cb, cmax, maps = (16, 4, 256, 32, 2) if ctx.dry else (256, 32, 16384, 512, 8)
    synthesis = dict(channel_base=cb, channel_max=cmax, num_fp16_res=4, conv_clamp=256)
    g_kwargs = dict(z_dim=512 if not ctx.dry else 32, c_dim=0, w_dim=512 if not ctx.dry else 32, img_resolution=res,
                    img_channels=3, mapping_kwargs={"num_layers": maps}, synthesis_kwargs=synthesis)  # fmt: skip
    d_kwargs = dict(c_dim=0, img_resolution=res, img_channels=3, epilogue_kwargs={"mbstd_group_size": min(8, batch)}, **synthesis)
    data, real = _real_images(ctx, batch, res)
    ref = _import_from(ctx.args.sg2_ref, "training.networks", "training.loss", "training.augment")
    note = "no --sg2-ref: ganzoo alone"
    torch.manual_seed(0)
    if ref is not None:
        ref_G, ref_D = ref.networks.Generator(**g_kwargs), ref.networks.Discriminator(**d_kwargs)
        G, D = Generator(**g_kwargs), Discriminator(**d_kwargs)
        G.load_state_dict(ref_G.state_dict(), strict=True)
        D.load_state_dict(ref_D.state_dict(), strict=True)
    else:
        G, D = Generator(**g_kwargs), Discriminator(**d_kwargs)
    options = dict(aug="ada", aug_p=0.2, r1_gamma=1.0, ema_kimg=20.0, ema_rampup=None)
    steps = _ganzoo_trainers(ctx, G, D, data, batch, "stylegan2", compiled=not ctx.dry, **options)
    if ref is not None:
        pipe = ref.augment.AugmentPipe(**{k: 1 for k in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
                                                          "brightness", "contrast", "lumaflip", "hue", "saturation")})  # fmt: skip
        pipe.p.copy_(torch.as_tensor(0.2))
        pipe = pipe.train().requires_grad_(False).to(ctx.device)
        ref_G, ref_D = ref_G.to(ctx.device).train().requires_grad_(False), ref_D.to(ctx.device).train().requires_grad_(False)
        loss = ref.loss.StyleGAN2Loss(ctx.device, ref_G.mapping, ref_G.synthesis, ref_D, augment_pipe=pipe, r1_gamma=1.0)

        def accumulate(phase, real_img, c, z, gen_c, gain, cur_nimg):
            loss.accumulate_gradients(phase, real_img, c, z, gen_c, sync=True, gain=gain)

        steps["reference"] = ReferenceLoop(ref_G, ref_D, accumulate, real, batch, ctx.device, ema_kimg=20.0).step
        note = f"reference: {ctx.args.sg2_ref} ({_custom_ops_state(ref)})"
    elif ctx.dry:
        note += "; --dry-run: no compiled run (compiling on CPU takes minutes)"
    stats = interleaved(ctx, steps, budget, per_round=2 if ctx.dry else 16, max_rounds=1 if ctx.dry else 6)
    return {"config": f"paper256-like, {res}², batch {batch}, fp16 x4 blocks, ADA bgc p 0.2", "note": note,
            "rows": _rows(stats, batch, "reference" if ref is not None else None, "train")}  # fmt: skip


def part_train_stylegan3(ctx: Context, budget: Budget) -> dict[str, Any]:
    from ganzoo.architectures.stylegan2.networks import Discriminator
    from ganzoo.architectures.stylegan3.networks import Generator

    res, batch, cb, zdim = (16, 4, 256, 16) if ctx.dry else (256, 16, 32768, 512)
    synthesis = dict(channel_base=cb, channel_max=512 if not ctx.dry else 16, num_fp16_res=4, conv_clamp=256,
                     magnitude_ema_beta=0.5 ** (batch / (20 * 1e3)))  # fmt: skip
    g_kwargs = dict(z_dim=zdim, c_dim=0, w_dim=zdim, img_resolution=res, img_channels=3, mapping_kwargs={"num_layers": 2},
                    **synthesis)  # fmt: skip
    d_kwargs = dict(c_dim=0, img_resolution=res, img_channels=3, channel_base=cb, channel_max=synthesis["channel_max"],
                    num_fp16_res=4, conv_clamp=256, epilogue_kwargs={"mbstd_group_size": 4})  # fmt: skip
    data, real = _real_images(ctx, batch, res)
    ref = _import_from(ctx.args.sg3_ref, "training.networks_stylegan3", "training.networks_stylegan2", "training.loss")
    torch.manual_seed(0)
    G, D = Generator(**g_kwargs), Discriminator(**d_kwargs)
    note = "no --sg3-ref: ganzoo alone"
    if ref is not None:
        ref_G, ref_D = ref.networks_stylegan3.Generator(**g_kwargs), ref.networks_stylegan2.Discriminator(**d_kwargs)
        G.load_state_dict(ref_G.state_dict(), strict=True)
        D.load_state_dict(ref_D.state_dict(), strict=True)
    options = dict(aug="none", r1_gamma=2.0, ema_kimg=10.0, ema_rampup=None)
    steps = _ganzoo_trainers(ctx, G, D, data, batch, "stylegan3", compiled=False, **options)
    if ref is not None:
        ref_G, ref_D = ref_G.to(ctx.device).train().requires_grad_(False), ref_D.to(ctx.device).train().requires_grad_(False)
        loss = ref.loss.StyleGAN2Loss(ctx.device, ref_G, ref_D, r1_gamma=2.0)

        def accumulate(phase, real_img, c, z, gen_c, gain, cur_nimg):
            loss.accumulate_gradients(phase, real_img, c, z, gen_c, gain=gain, cur_nimg=cur_nimg)

        steps["reference"] = ReferenceLoop(ref_G, ref_D, accumulate, real, batch, ctx.device, reg=(("G", 0), ("D", 16)),
                                           lr=(0.0025, 0.002)).step  # fmt: skip
        note = f"reference: {ctx.args.sg3_ref} ({_custom_ops_state(ref)})"
    stats = interleaved(ctx, steps, budget, per_round=1 if ctx.dry else 16, max_rounds=1 if ctx.dry else 4)
    return {"config": f"StyleGAN3-T, {res}², batch {batch}, no augmentation", "note": note,
            "rows": _rows(stats, batch, "reference" if ref is not None else None, "train")}  # fmt: skip


def part_train_biggan(ctx: Context, budget: Budget) -> dict[str, Any]:
    from ganzoo.architectures.biggan.networks import Discriminator, Generator

    import bench_biggan  # the release config and the reference import (scripts/bench_biggan.py)

    res, batch, ch = (32, 4, 8) if ctx.dry else (128, 32, 96)
    note = "no --biggan-ref: ganzoo alone"
    steps: dict[str, Callable] = {}
    ref = bench_biggan.import_reference(Path(ctx.args.biggan_ref).resolve()) if ctx.args.biggan_ref else None
    config = RELEASE_BIGGAN | {"G_ch": ch, "D_ch": ch, "resolution": res, "batch_size": batch}
    if ctx.dry:
        config |= {"n_classes": 10, "G_attn": "0", "D_attn": "0"}
    if ref is not None:
        config = bench_biggan.reference_config(ref, argparse.Namespace(ch=ch, resolution=res, batch=batch))
    torch.manual_seed(0)
    G, D = Generator(**config), Discriminator(**config)
    data, x = _real_images(ctx, batch, res, classes=config["n_classes"])
    steps.update(_ganzoo_trainers(ctx, G, D, data, batch, "biggan", compiled=False, aug="none"))
    if ref is not None:
        acts = {"G_activation": ref.utils.activation_dict[config["G_nl"]], "D_activation": ref.utils.activation_dict[config["D_nl"]]}
        ref_G = ref.BigGAN.Generator(**{**config, **acts}).to(ctx.device)
        ref_D = ref.BigGAN.Discriminator(**{**config, **acts}).to(ctx.device)
        ref_G_ema = ref.BigGAN.Generator(**{**config, **acts, "no_optim": True}).to(ctx.device)
        ref_G.load_state_dict(G.state_dict(), strict=True)
        ref_D.load_state_dict(D.state_dict(), strict=True)
        ema = ref.utils.ema(ref_G, ref_G_ema, config["ema_decay"], config["ema_start"])
        z_, y_ = ref.utils.prepare_z_y(batch, ref_G.dim_z, config["n_classes"], device=str(ctx.device), fp16=False)
        train = ref.train_fns.GAN_training_function(ref_G, ref_D, ref.BigGAN.G_D(ref_G, ref_D), z_, y_, ema,
                                                    {"itr": 0, "config": config}, config)  # fmt: skip
        y = torch.randint(0, config["n_classes"], [batch], device=ctx.device)
        steps["reference"] = lambda: train(x, y)
        note = f"reference: {ctx.args.biggan_ref}"
    stats = interleaved(ctx, steps, budget, per_round=1 if ctx.dry else 4, max_rounds=1 if ctx.dry else 6)
    return {"config": f"BigGAN {res}², G_ch/D_ch {ch}, batch {batch}, no augmentation", "note": note,
            "rows": _rows(stats, batch, "reference" if ref is not None else None, "train")}  # fmt: skip


def part_generate(ctx: Context, budget: Budget) -> dict[str, Any]:
    from ganzoo.architectures.stylegan2.networks import Generator

    ref = _import_from(ctx.args.sg2_ref, "training.networks")
    rows, notes = [], []
    sizes = [(16, 4), (32, 2)] if ctx.dry else [(256, 32), (1024, 8)]
    for res, batch in sizes:
        cb = 256 if ctx.dry else (16384 if res <= 256 else 32768)
        g_kwargs = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, mapping_kwargs={"num_layers": 8},
                        synthesis_kwargs=dict(channel_base=cb, channel_max=512 if not ctx.dry else 32, num_fp16_res=4,
                                              conv_clamp=256))  # fmt: skip
        torch.manual_seed(0)
        G = Generator(**g_kwargs).eval().requires_grad_(False).to(ctx.device)
        candidates = {"ganzoo": G}
        if ref is not None:
            ref_G = ref.networks.Generator(**g_kwargs)
            ref_G.load_state_dict(G.state_dict(), strict=True)
            candidates["reference"] = ref_G.eval().requires_grad_(False).to(ctx.device)
        z = torch.randn([batch, 512], device=ctx.device)
        c = torch.zeros([batch, 0], device=ctx.device)
        for precision in ("fp16", "fp32"):
            if ctx.dry and precision == "fp16":
                continue  # float16 convolutions on CPU: not what anyone runs
            steps = {name: (lambda net=net, p=precision: net(z, c, noise_mode="const", force_fp32=p == "fp32"))
                     for name, net in candidates.items()}  # fmt: skip
            with torch.no_grad():
                stats = interleaved(ctx, steps, Budget(budget.left() / 4), per_round=4, max_rounds=1 if ctx.dry else 5)
            for row in _rows(stats, batch, "reference" if ref is not None else None, "generate"):
                rows.append({"config": f"{res}² {precision}, batch {batch}", **row})
    notes.append(f"reference: {ctx.args.sg2_ref}" if ref is not None else "no --sg2-ref: ganzoo alone")
    return {"config": "StyleGAN2 paper generators (8 mapping layers), noise const", "note": "; ".join(notes), "rows": rows}


def part_exactness(ctx: Context, budget: Budget) -> dict[str, Any]:
    from ganzoo.architectures.stylegan2.networks import Generator
    from ganzoo.compile import compile_generator

    rows: list[dict[str, Any]] = []
    tests = ["tests/test_augment.py", "-k", "grid_sample"] if ctx.dry else FIXTURE_TESTS
    env = {**os.environ, "GANZOO_TEST_DEVICE": str(ctx.device), "NVIDIA_TF32_OVERRIDE": "0"}
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=max(budget.left() * 0.7, 30))  # fmt: skip
        summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
        rows.append({"check": f"fixture tests on {ctx.device} (TF32 off)", "result": summary, "ok": done.returncode == 0})
    except subprocess.TimeoutExpired:
        rows.append({"check": f"fixture tests on {ctx.device} (TF32 off)", "result": "cut: out of its budget", "ok": False})
    if ctx.dry:
        rows.append({"check": "compiled vs eager G", "result": "not run in --dry-run (compiling on CPU takes minutes)", "ok": True})
        return {"rows": rows}
    g_kwargs = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3, mapping_kwargs={"num_layers": 8},
                    synthesis_kwargs=dict(channel_base=16384, channel_max=512, num_fp16_res=0, conv_clamp=256))  # fmt: skip
    torch.manual_seed(0)
    eager = Generator(**g_kwargs).eval().requires_grad_(False).to(ctx.device)
    compiled = copy.deepcopy(eager)
    compile_generator(compiled)
    z = torch.randn([8, 512], device=ctx.device)
    c = torch.zeros([8, 0], device=ctx.device)
    with torch.no_grad():
        diff = float((compiled(z, c, noise_mode="const") - eager(z, c, noise_mode="const")).abs().max())
    rows.append({"check": "compiled vs eager G, 256², fp32", "result": f"max abs {diff:.2e} (bound {EXACT_TOL:g})",
                 "ok": diff <= EXACT_TOL})  # fmt: skip
    return {"rows": rows}


PARTS: dict[str, Callable[[Context, Budget], dict[str, Any]]] = {
    "exactness": part_exactness,
    "train_stylegan2": part_train_stylegan2,
    "train_stylegan3": part_train_stylegan3,
    "train_biggan": part_train_biggan,
    "generate": part_generate,
}


# ----------------------------------------------------------------------------------------------
# Report


def environment(ctx: Context) -> dict[str, Any]:
    info: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(), "device": str(ctx.device),
                            "dry_run": ctx.dry}  # fmt: skip
    if ctx.cuda:
        info.update(card=torch.cuda.get_device_name(ctx.device), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(), memory_gib=round(torch.cuda.get_device_properties(ctx.device).total_memory / 2**30, 1))  # fmt: skip
    else:
        info["card"] = f"CPU ({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads"
    return info


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [f"GPU check on **{env['card']}** (torch {env['torch']}{', CUDA ' + str(env['cuda']) if env.get('cuda') else ''}"
             f"{', dry run' if env['dry_run'] else ''}), {report['seconds']:.0f} s.", ""]  # fmt: skip
    for name, part in report["parts"].items():
        lines.append(f"**{name}** ({part['status']}, {part['seconds']:.0f} s){': ' + part['config'] if part.get('config') else ''}"
                     f"{'. ' + part['note'] if part.get('note') else ''}")  # fmt: skip
        rows = part.get("rows") or []
        if rows:
            keys = [k for k in rows[0] if k != "ok"] + (["ok"] if "ok" in rows[0] else [])
            lines += ["", "| " + " | ".join(keys) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
            lines += ["| " + " | ".join("-" if r.get(k) is None else str(r.get(k)) for k in keys) + " |" for r in rows]
        if part.get("error"):
            lines.append(f"error: {part['error']}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json and gpu_check.md")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dry-run", action="store_true", help="tiny configs on CPU (checks the script, measures nothing)")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds for all parts together (default 480)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--sg2-ref", help="stylegan2-ada-pytorch checkout")
    ap.add_argument("--sg3-ref", help="stylegan3 checkout")
    ap.add_argument("--biggan-ref", help="BigGAN-PyTorch checkout")
    args = ap.parse_args(argv)
    ctx = Context(args)
    if ctx.cuda and not torch.cuda.is_available():
        print("error: --device cuda: no CUDA device here (use --dry-run on a CPU machine)", file=sys.stderr)
        return 1
    if ctx.cuda:
        torch.backends.cudnn.benchmark = True
    parts = [p for p in args.parts.split(",") if p]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        print(f"error: --parts: unknown {', '.join(unknown)} (choose from {', '.join(PARTS)})", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report: dict[str, Any] = {"environment": environment(ctx), "parts": {}}
    total_share = sum(SHARES[p] for p in parts)
    for name in parts:
        budget = Budget(args.budget * SHARES[name] / total_share)
        t0 = time.perf_counter()
        print(f"{name} ({budget.left():.0f} s)", flush=True)
        try:
            part = {"status": "ok", **PARTS[name](ctx, budget)}
            if budget.left() < 0:
                part["status"] = "cut (past its budget)"
        except Exception as exc:  # noqa: BLE001 - one part failing must not lose the others' numbers
            traceback.print_exc()
            part = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        part["seconds"] = round(time.perf_counter() - t0, 1)
        report["parts"][name] = part
        if ctx.cuda:
            torch.cuda.empty_cache()
    report["seconds"] = round(time.perf_counter() - start, 1)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    failed = [n for n, p in report["parts"].items() if p["status"] == "error"]
    failed += [n for n, p in report["parts"].items() for r in p.get("rows", []) if r.get("ok") is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
