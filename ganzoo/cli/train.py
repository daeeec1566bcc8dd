"""``ganzoo finetune`` and ``ganzoo pretrain``: StyleGAN2-ADA training (logic in
:mod:`ganzoo.train`).

Renamed options (their old spellings meant something else in other commands; they still work,
hidden, with a warning): ``finetune --target`` (ADA's r_t; ``rank --target`` is a folder of
images) is ``--ada-target``, and ``finetune --mirror`` (x-flips; ``ganzoo mirror`` writes a Hub
mirror) is ``--xflip``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ganzoo.cli._common import apply_threads, old_spelling, renamed, say, threads_option, usage_error
from ganzoo.errors import GanzooError


def register(app: typer.Typer) -> None:
    app.command()(finetune)
    app.command()(pretrain)


def finetune(
    source: Optional[str] = typer.Argument(None, help="Source: registry name, Hub repo id, checkpoint directory or file (not with --resume)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Target images: a folder (recursive) or a zip, at the source's resolution (see --resolution)."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="full (default) | freezed | adafm | scratch."),
    kimg: Optional[float] = typer.Option(None, "--kimg", help="Train until D has seen this many thousand images (default 100)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory; it becomes the final checkpoint directory."),
    aug: Optional[str] = typer.Option(None, "--aug", help="ada (default) | fixed | none."),
    p: Optional[float] = typer.Option(None, "--p", help="Augmentation probability (--aug fixed; initial p for ada)."),
    aug_preset: Optional[str] = typer.Option(None, "--augpipe", help="Augmentation preset: bgc (default) | bgcfnc | ..."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Minibatch size (default by resolution, as StyleGAN2-ADA)."),
    batch_gpu: Optional[int] = typer.Option(None, "--batch-gpu", help="Images per chunk: gradient accumulation (same result)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of everything (default 0)."),
    snap: Optional[float] = typer.Option(None, "--snap", help="Snapshot interval in kimg (default 50)."),
    metrics: str = typer.Option("", "--metrics", help="Metrics at each snapshot, e.g. fid,kid,pr."),
    num_gen: Optional[int] = typer.Option(None, "--num-gen", help="--metrics: generated samples per snapshot (default 50000)."),
    feature_extractor: Optional[str] = typer.Option(None, "--feature-extractor", help="--metrics: one extractor for all metrics (default: inception-fid for FID/KID, vgg16-pr for PR)."),
    random_weights: bool = typer.Option(False, "--random-weights", help="--metrics: random-weight extractors, testing only, values are meaningless."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run directory from its newest snapshot."),
    freeze_d: Optional[int] = typer.Option(None, "--freeze-d", help="freezed: D layers to freeze (default: 3 highest resolutions)."),
    general_g: Optional[int] = typer.Option(None, "--general-g", help="adafm: G blocks (highest resolutions) with AdaFM."),
    general_d: Optional[int] = typer.Option(None, "--general-d", help="adafm: D blocks next to the image to freeze."),
    adafm_variant: Optional[str] = typer.Option(None, "--adafm-variant", help="adafm: keep (default: every transferred block) | paper (as the AdaFM authors' code: GP-GAN's specific part and D head rebuilt)."),
    allow_random_d: bool = typer.Option(False, "--allow-random-d", help="Start D from scratch when the source has none."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Resample the data to this (the source's) resolution."),
    xflip: bool = typer.Option(False, "--xflip", help="Add x-flips of the data."),
    strict: bool = typer.Option(False, "--strict", help="Unreadable data files are an error, not a warning."),
    gamma: Optional[float] = typer.Option(None, "--gamma", help="R1 weight (default 0.0002*res^2/batch)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate of G and D (default 0.0025)."),
    ada_target: Optional[float] = typer.Option(None, "--ada-target", help="ADA target for r_t (default 0.6)."),
    g_ortho: Optional[float] = typer.Option(None, "--g-ortho", help="BigGAN: orthogonal regularization of G, BigGAN-PyTorch's --G_ortho (paper: 1e-4; default 0, off)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, ..."),
    threads: Optional[int] = threads_option(),
    old_target: Optional[float] = old_spelling(None, "--target", "--ada-target"),
    old_mirror: bool = old_spelling(False, "--mirror", "--xflip"),
) -> None:
    """Adapt a pretrained GAN to your images with a transfer recipe (StyleGAN2-ADA training)."""
    if resume is None and (source is None or data is None or out is None):
        usage_error("give SOURCE, --data and --out (or --resume RUN_DIR)")
    from ganzoo.train.distributed import is_rank_zero, maybe_init_distributed
    from ganzoo.train.options import FinetuneOptions
    from ganzoo.train.runner import finetune as finetune_fn

    ada_target = renamed("finetune", "--target", "--ada-target", old_target, ada_target)
    xflip = renamed("finetune", "--mirror", "--xflip", old_mirror, xflip, unset=False)
    device = maybe_init_distributed(device)
    chosen = apply_threads(threads)
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    metric_settings = {"num_gen": num_gen, "feature_extractor": feature_extractor, "allow_random_weights": random_weights}
    if not names and any(metric_settings.values()):
        raise GanzooError("--num-gen, --feature-extractor and --random-weights apply to --metrics; give --metrics too")
    metrics_options = {key: value for key, value in metric_settings.items() if value}  # unset: evaluate's defaults
    family_options = {"G_ortho": g_ortho} if g_ortho is not None else {}  # unset: the family's default
    options = FinetuneOptions(recipe=recipe, kimg=kimg, aug=aug, batch=batch, seed=seed, snap=snap, metrics=names,
                              freeze_d=freeze_d, general_g=general_g, general_d=general_d, adafm_variant=adafm_variant,
                              allow_random_d=allow_random_d, resolution=resolution, mirror=xflip, p=p, strict=strict,
                              aug_preset=aug_preset, gamma=gamma, lr=lr, batch_gpu=batch_gpu, target=ada_target,
                              device=device, threads=chosen, metrics_options=metrics_options or None,
                              training=family_options)  # fmt: skip
    path = finetune_fn(source, data, out, options=options, resume=resume)
    if is_rank_zero():  # under torchrun, one line, not one per process
        say(f"finetuned -> {path} (a checkpoint directory: ganzoo generate {path} --out grid.png)")


def pretrain(
    data: Optional[str] = typer.Option(None, "--data", help="synth:KIND[:SEED] (pinknoise, primitives, primitives-s, primitives-ps), or a folder/zip of images."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Image size (a power of two)."),
    kimg: Optional[float] = typer.Option(None, "--kimg", help="Train until D has seen this many thousand images (default 100)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory; it becomes the checkpoint directory."),
    channels: Optional[int] = typer.Option(None, "--channels", help="3 (RGB, default) or 1 (grayscale)."),
    strict: bool = typer.Option(False, "--strict", help="Unreadable data files are an error, not a warning."),
    aug: Optional[str] = typer.Option(None, "--aug", help="none (default: synthetic data is unlimited) | ada | fixed."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Minibatch size (default by resolution, as StyleGAN2-ADA)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of everything (default 0)."),
    snap: Optional[float] = typer.Option(None, "--snap", help="Snapshot interval in kimg (default 50)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run directory from its newest snapshot."),
    z_dim: Optional[int] = typer.Option(None, "--z-dim", help="Latent size (default 128)."),
    mapping_layers: Optional[int] = typer.Option(None, "--mapping-layers", help="Mapping network depth (default 2)."),
    channel_base: Optional[int] = typer.Option(None, "--channel-base", help="Channels at resolution r: min(base / r, max) (default 1024)."),
    channel_max: Optional[int] = typer.Option(None, "--channel-max", help="Largest channel count (default 64)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, ..."),
    threads: Optional[int] = threads_option(),
) -> None:
    """Train a StyleGAN2 from random init, e.g. on privacy-free synthetic data (--data synth:primitives-ps)."""
    if resume is None and (data is None or resolution is None or out is None):
        usage_error("give --data, --resolution and --out (or --resume RUN_DIR)")
    from ganzoo.train.distributed import is_rank_zero, maybe_init_distributed
    from ganzoo.train.options import FinetuneOptions
    from ganzoo.train.pretrain import pretrain as pretrain_fn

    device = maybe_init_distributed(device)
    options = FinetuneOptions(kimg=kimg, aug=aug, batch=batch, seed=seed, snap=snap, device=device, strict=strict,
                              threads=apply_threads(threads))  # fmt: skip
    path = pretrain_fn(data, out, resolution=resolution, options=options, channels=channels, resume=resume, z_dim=z_dim,
                       w_dim=z_dim, mapping_layers=mapping_layers, channel_base=channel_base,
                       channel_max=channel_max)  # fmt: skip
    if is_rank_zero():
        say(f"pretrained -> {path} (a checkpoint directory: ganzoo generate {path} --out grid.png)")
