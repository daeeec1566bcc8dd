"""Checks before training: every setting that can be refused is refused before a minibatch runs.

``ganzoo finetune``, ``ganzoo pretrain`` and ``ganzoo merge`` (the CLI and the Python API alike)
go through these functions before they load data, build networks or train, so a mistake is one
line naming the flag and the value the user gave (``--lr -1: must be a positive number``), not
an error from deep inside torch at the first minibatch or, worse, at the first snapshot.

What is checked here:

* the device (``--device cuda`` on a machine without CUDA is one line);
* numeric ranges of every training setting (:func:`check_options`, :func:`check_settings`);
* ``--metrics`` names, their options and the availability of their feature extractor's
  weights (:func:`check_metrics`, :func:`check_extractor`): fetched now, not at the first
  snapshot;
* that the networks of a resolution can have channels at all, and that one chunk of a
  minibatch can fit in the memory of the device (:func:`check_architecture`,
  :func:`check_memory`): a clear refusal for absurd sizes, never a false one (the estimate
  is a lower bound).
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Iterable, Sequence

import torch

from ganzoo.errors import GanzooError
from ganzoo.resources import machine_memory

__all__ = [
    "FLAGS",
    "channels_at",
    "check_architecture",
    "check_device",
    "check_extractor",
    "check_family_options",
    "check_memory",
    "check_metric_data",
    "check_metrics",
    "check_number",
    "check_options",
    "check_settings",
    "device_memory",
    "memory_floor",
    "metric_extractors",
    "world_size",
]

#: The command-line flag of each :class:`~ganzoo.train.loop.TrainingOptions` field that has one;
#: the others are named by their field (Python API only).
FLAGS = {
    "total_kimg": "--kimg", "batch": "--batch", "batch_gpu": "--batch-gpu", "seed": "--seed", "lr_G": "--lr",
    "lr_D": "--lr", "r1_gamma": "--gamma", "aug": "--aug", "aug_preset": "--augpipe", "aug_p": "--p",
    "ada_target": "--ada-target", "G_ortho": "--g-ortho",
}  # fmt: skip

#: Fewest real images each metric needs (``k_pr`` and ``k_dc`` at their defaults, 3 and 5).
_METRIC_MIN_REAL = {"fid": 2, "kid": 2}


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _refuse(flag: str, value: Any, problem: str) -> GanzooError:
    return GanzooError(f"{flag} {_text(value)}: {problem}")


def check_number(flag: str, value: Any, *, low: float | None = None, high: float | None = None, open_low: bool = False,
                 integer: bool = False) -> None:  # fmt: skip
    """Refuses ``value`` unless it is a (finite) number in ``[low, high]`` (``(low, high]`` with
    ``open_low``), an integer with ``integer``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _refuse(flag, value, "must be a number")
    if integer and not (isinstance(value, numbers.Integral) or float(value).is_integer()):
        raise _refuse(flag, value, "must be a whole number")
    if not math.isfinite(float(value)):
        raise _refuse(flag, value, "must be a finite number")
    below = low is not None and (value <= low if open_low else value < low)
    above = high is not None and value > high
    if below or above:
        if low is not None and high is not None:
            raise _refuse(flag, value, f"must be from {_text(low)} to {_text(high)}")
        if low == 0 and open_low:
            raise _refuse(flag, value, "must be a positive number")
        if low is not None:
            raise _refuse(flag, value, f"must be at least {_text(low)}" if not open_low else f"must be above {_text(low)}")
        raise _refuse(flag, value, f"must be at most {_text(high)}")


def check_device(device: Any) -> str:
    """Returns ``device`` as a string once it names a device this machine has.

    Raises:
        GanzooError: not a device name, or a device that is not there (no CUDA, a CUDA index
            beyond the GPUs present, no MPS).
    """
    text = str(device)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise GanzooError(f"--device {text}: not a device; use cpu, cuda, cuda:1, mps, ...") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise GanzooError(f"--device {text}: CUDA is not available ({why}); use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise GanzooError(f"--device {text}: there {'is' if count == 1 else 'are'} {count} CUDA device(s), "
                              f"cuda:0 to cuda:{count - 1}")  # fmt: skip
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise GanzooError(f"--device {text}: MPS is not available on this machine; use --device cpu")
    elif dev.type != "cpu":
        try:
            torch.empty(1, device=dev)
        except Exception as exc:  # noqa: BLE001 - any backend's way of saying it is not there
            raise GanzooError(f"--device {text}: not available ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    return text


def check_options(opts: Any) -> None:
    """Refuses :class:`~ganzoo.train.loop.TrainingOptions` out of range, naming the flag.

    Raises:
        GanzooError: one line, e.g. ``--lr -1: must be a positive number``.
    """
    from ganzoo.train.augment import PRESETS

    def name(field: str) -> str:
        return FLAGS.get(field, field)

    check_number(name("total_kimg"), opts.total_kimg, low=0, open_low=True)
    check_number(name("batch"), opts.batch, low=1, integer=True)
    if opts.batch_gpu is not None:
        check_number(name("batch_gpu"), opts.batch_gpu, low=1, integer=True)
        if opts.batch % opts.batch_gpu:
            raise _refuse(name("batch_gpu"), opts.batch_gpu, f"must divide --batch {opts.batch}")
    check_number(name("seed"), opts.seed, low=0, high=2**63 - 1, integer=True)
    for field in ("lr_G", "lr_D"):
        check_number(name(field), getattr(opts, field), low=0, open_low=True)
    if len(tuple(opts.betas)) != 2:
        raise _refuse("betas", tuple(opts.betas), "must be two numbers")
    for beta in opts.betas:
        check_number("betas", beta, low=0, high=1)
        if beta == 1:
            raise _refuse("betas", tuple(opts.betas), "each must be below 1")
    if opts.r1_gamma is not None:
        check_number(name("r1_gamma"), opts.r1_gamma, low=0)
    for field in ("G_reg_interval", "D_reg_interval", "pl_batch_shrink", "ada_interval"):
        if getattr(opts, field) is not None or field not in ("G_reg_interval", "D_reg_interval"):
            check_number(field, getattr(opts, field), low=1, integer=True)
    check_number("adam_eps", opts.adam_eps, low=0)
    if opts.ema_beta is not None:
        check_number("ema_beta", opts.ema_beta, low=0, high=1)
    check_number("ema_start_kimg", opts.ema_start_kimg, low=0)
    check_number("pl_weight", opts.pl_weight, low=0)
    check_number("pl_decay", opts.pl_decay, low=0, high=1)
    check_number("style_mixing_prob", opts.style_mixing_prob, low=0, high=1)
    if opts.ema_kimg is not None:
        check_number("ema_kimg", opts.ema_kimg, low=0)
    if opts.ema_rampup is not None:
        check_number("ema_rampup", opts.ema_rampup, low=0)
    if opts.aug not in ("ada", "fixed", "none"):
        raise GanzooError(f"--aug must be ada, fixed or none, not {opts.aug!r}")
    if opts.aug_preset not in PRESETS:
        raise GanzooError(f"--augpipe {opts.aug_preset}: unknown augmentation preset; choose from {', '.join(PRESETS)}")
    check_number(name("aug_p"), opts.aug_p, low=0, high=1)
    check_number(name("ada_target"), opts.ada_target, low=0, high=1)
    check_number("ada_kimg", opts.ada_kimg, low=0, open_low=True)
    check_number("penalty_weight", opts.penalty_weight, low=0)
    check_number(name("G_ortho"), opts.G_ortho, low=0)


def check_family_options(architecture: Any, opts: Any) -> None:
    """Refuses a family's own option (:data:`~ganzoo.train.loop.FAMILY_OPTIONS`, e.g.
    ``--g-ortho``) set for an architecture whose objective does not read it
    (:attr:`~ganzoo.architectures.Architecture.objective_options`).

    Raises:
        GanzooError: one line naming the flag, the architecture and those that take it.
    """
    from ganzoo.architectures import known_architectures
    from ganzoo.train.loop import FAMILY_OPTIONS

    for field in FAMILY_OPTIONS:
        value = getattr(opts, field)
        if value and field not in architecture.objective_options:
            takers = sorted(n for n, a in known_architectures().items() if field in a.objective_options)
            raise _refuse(FLAGS.get(field, field), value, f"{architecture.name} networks do not train with it "
                          f"(it applies to {', '.join(takers) or 'no known architecture'})")  # fmt: skip


def check_settings(*, kimg: float | None = None, snap: float | None = None, tick_kimg: float | None = None,
                   keep_snapshots: int | None = None, recipe: str | None = None, batch: int | None = None,
                   batch_gpu: int | None = None, seed: int | None = None, lr: float | None = None,
                   gamma: float | None = None, p: float | None = None, aug: str | None = None,
                   aug_preset: str | None = None, target: float | None = None, ema_kimg: float | None = None,
                   freeze_d: int | None = None, general_g: int | None = None, general_d: int | None = None,
                   resolution: int | None = None, adafm_variant: str | None = None,
                   **options: Any) -> None:  # fmt: skip
    """Checks the settings of :func:`ganzoo.finetune` the user gave (None: not given, the
    default is valid), before anything is loaded.

    Args:
        **options: further :class:`~ganzoo.train.loop.TrainingOptions` fields; other keys are
            ignored here (the caller's signature refuses unknown ones).

    Raises:
        GanzooError: one line naming the flag, the value given and the range.
    """
    from dataclasses import fields

    from ganzoo.train.loop import TrainingOptions
    from ganzoo.train.recipes import ADAFM_VARIANTS, RECIPES

    if recipe is not None and recipe not in RECIPES:
        raise GanzooError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    if adafm_variant is not None and adafm_variant not in ADAFM_VARIANTS:
        raise GanzooError(f"--adafm-variant {adafm_variant}: choose from {', '.join(ADAFM_VARIANTS)}")
    for flag, value in (("--snap", snap), ("tick_kimg", tick_kimg)):
        if value is not None:
            check_number(flag, value, low=0, open_low=True)
    if keep_snapshots is not None:
        check_number("keep_snapshots", keep_snapshots, low=1, integer=True)
    for flag, value in (("--freeze-d", freeze_d), ("--general-g", general_g), ("--general-d", general_d)):
        if value is not None:
            check_number(flag, value, low=0, integer=True)
    if resolution is not None:
        check_number("--resolution", resolution, low=4, integer=True)
        if int(resolution) & (int(resolution) - 1):
            raise _refuse("--resolution", resolution, "must be a power of two, at least 4")
    given = dict(total_kimg=kimg, batch=batch, batch_gpu=batch_gpu, seed=seed, lr_G=lr, lr_D=lr, r1_gamma=gamma,
                 aug_p=p, aug=aug, aug_preset=aug_preset, ada_target=target, ema_kimg=ema_kimg)  # fmt: skip
    known = {f.name for f in fields(TrainingOptions)}
    values = {k: v for k, v in given.items() if v is not None}
    values.update({k: v for k, v in options.items() if k in known})
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    provisional = TrainingOptions(**values)
    if batch_gpu is not None and batch is None:
        provisional.batch = int(batch_gpu)  # the default batch is known only with the resolution
    check_options(provisional)


# ----------------------------------------------------------------------------------------------
# Metrics


def check_metrics(metrics: Sequence[str] | str | None, options: dict | None, data: Any = None) -> list[str]:
    """Validated ``--metrics`` names (lower case, in the order given) and their options.

    Args:
        metrics: metric names (``fid``, ``kid``, ``pr``, ``dc``); empty: none.
        options: further arguments of :func:`ganzoo.metrics.evaluate.evaluate`.
        data: the training data, when known: the metrics re-read it from disk, so it must be a
            folder or zip of images (not images in memory or a stream made on the fly).

    Raises:
        GanzooError: an unknown metric, an option ``evaluate`` does not take or out of range,
            or data the metrics cannot read.
    """
    import inspect

    from ganzoo.metrics.evaluate import evaluate, parse_metric_names
    from ganzoo.train.dataset import SYNTH_PREFIX

    if isinstance(metrics, str):
        metrics = metrics.split(",")
    names = [str(m).strip().lower() for m in (metrics or ()) if str(m).strip()]
    options = dict(options or {})
    if not names:
        if options:
            raise GanzooError(f"metric options ({', '.join(sorted(options))}) apply to --metrics; give --metrics too")
        return []
    parse_metric_names(names)  # unknown names: one line listing the known ones
    names = list(dict.fromkeys(names))
    allowed = set(inspect.signature(evaluate).parameters) - {"src", "data", "metrics", "progress"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise GanzooError(f"metric options {', '.join(unknown)}: not options of the metrics; use {', '.join(sorted(allowed))}")
    if options.get("num_gen") is not None:
        check_number("--num-gen", options["num_gen"], low=2, integer=True)
    for key in ("k_pr", "k_dc", "kid_subsets", "kid_subset_size"):
        if options.get(key) is not None:
            check_number(key, options[key], low=1, integer=True)
    if options.get("feature_extractor") is not None:
        from ganzoo.metrics.features import check_extractor_name

        check_extractor_name(str(options["feature_extractor"]))
    if data is not None:
        if isinstance(data, (str, os.PathLike)):
            text: str | None = os.fspath(data)  # a missing folder is the data loader's error
        else:  # already read (TrainingImages): fine when it came from a folder still on disk
            path = getattr(data, "path", None)
            text = path if isinstance(path, str) and os.path.exists(path) else None
        if text is None or text.startswith(SYNTH_PREFIX):
            raise GanzooError("--metrics needs the data as a folder or zip of images on disk "
                              "(the metrics re-read it; in-memory images and synthetic streams cannot be)")  # fmt: skip
    return names


def metric_extractors(metrics: Iterable[str], options: dict | None) -> list[str]:
    """The feature extractors the metrics use (each once), as ``evaluate`` chooses them."""
    from ganzoo.metrics.evaluate import DEFAULT_EXTRACTORS

    chosen = (options or {}).get("feature_extractor")
    return list(dict.fromkeys(chosen or DEFAULT_EXTRACTORS[m] for m in metrics))


def check_extractor(name: str, allow_random_weights: bool = False, device: Any = "cpu", progress: bool = True,
                    what: str = "--metrics") -> None:  # fmt: skip
    """Builds feature extractor ``name`` now (fetching and verifying its weights), so that a
    missing or unreachable file is refused before training, not at the first snapshot. The
    extractor is kept (:func:`ganzoo.metrics.features.get_extractor` remembers it), so the
    snapshots reuse it.

    Raises:
        GanzooError: an unknown name, or weights that cannot be had (the message says why and
            how to place them by hand).
    """
    import warnings

    from ganzoo.metrics.features import RandomWeightsWarning, check_extractor_name, get_extractor

    check_extractor_name(name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RandomWeightsWarning)  # said once, when the metrics run
            get_extractor(name, device=device, allow_random_weights=allow_random_weights, progress=progress)
    except GanzooError as exc:
        raise type(exc)(f"{what} needs the {name} feature extractor: {exc}") from None


def check_metric_data(metrics: Sequence[str], num_real: int, options: dict | None) -> None:
    """Refuses too few training images for the metrics (before training, not at a snapshot)."""
    options = options or {}
    need = dict(_METRIC_MIN_REAL)
    need["pr"] = int(options.get("k_pr") or 3) + 1
    need["dc"] = int(options.get("k_dc") or 5) + 1
    short = [m for m in metrics if num_real < need[m]]
    if short:
        worst = max(short, key=lambda m: need[m])
        raise GanzooError(f"--metrics {','.join(metrics)}: {worst} needs at least {need[worst]} real images, "
                          f"the data has {num_real}")  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Sizes


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Channels of the StyleGAN2 block at ``resolution``: ``min(channel_base // res, channel_max)``."""
    return min(int(channel_base) // int(resolution), int(channel_max))


def check_architecture(resolution: int, channel_base: int, channel_max: int) -> None:
    """Refuses an architecture whose highest-resolution block would have no channels.

    Raises:
        GanzooError: naming the resolution and the channel base it needs.
    """
    if channels_at(resolution, channel_base, channel_max) < 1 or channel_max < 1:
        raise GanzooError(f"--resolution {resolution}: with --channel-base {channel_base} and --channel-max "
                          f"{channel_max} the {resolution}x{resolution} block has no channels; give --channel-base "
                          f"of at least {resolution} and --channel-max of at least 1")  # fmt: skip


def memory_floor(resolution: int, img_channels: int, g_channels: int, d_channels: int, batch_gpu: int) -> int:
    """A lower bound of the bytes one training process needs for one chunk of ``batch_gpu``
    images at ``resolution``: the activations of G's and D's highest-resolution blocks (two
    feature maps each, counted at 2 bytes a value, as if in fp16), the float32 images G makes
    and D sees (reals, fakes, augmented), and the float32 synthesis noise buffers of G and G_ema
    at that resolution. The real peak is several times higher (backward, R1 and path-length
    double backward, lower resolutions, weights)."""
    pixels = int(resolution) ** 2
    per_image = pixels * (4 * 3 * int(img_channels) + 2 * (2 * int(g_channels) + 2 * int(d_channels)))
    noise = 4 * pixels * 2 * 2
    return int(batch_gpu) * per_image + noise


def device_memory(device: Any) -> int | None:
    """Total memory of ``device`` in bytes (the machine's RAM for the CPU), or None if unknown."""
    dev = torch.device(device)
    try:
        if dev.type == "cuda":
            return int(torch.cuda.get_device_properties(dev.index if dev.index is not None else torch.cuda.current_device()).total_memory)
        if dev.type in ("cpu", "mps"):
            return machine_memory()
    except (AttributeError, ValueError, OSError, RuntimeError):
        return None
    return None


def check_memory(resolution: int, img_channels: int, g_channels: int, d_channels: int, batch_gpu: int, device: Any,
                 what: str | None = None) -> None:  # fmt: skip
    """Refuses a training run that cannot fit in the memory of ``device`` even by the lower
    bound :func:`memory_floor`: a clear refusal for absurd sizes, never a false one.

    Args:
        what: how the message names the resolution (default ``--resolution R``).

    Raises:
        GanzooError: with the bound, the device's memory and what to change.
    """
    need = memory_floor(resolution, img_channels, g_channels, d_channels, batch_gpu)
    have = device_memory(device)
    if have is None or need <= have:
        return
    gib = 1 << 30
    label = what or f"--resolution {resolution}"
    raise GanzooError(f"{label}: training {batch_gpu} image(s) of {resolution}x{resolution} at a time needs more than "
                      f"{need / gib:,.0f} GiB, and {device} has {have / gib:,.0f} GiB; use a smaller resolution"
                      + (" or --batch-gpu" if batch_gpu > 1 else ""))  # fmt: skip


def world_size() -> int:
    """Processes training together (``torchrun``'s ``WORLD_SIZE``; 1 without it)."""
    try:
        return max(int(os.environ.get("WORLD_SIZE", "1")), 1)
    except ValueError:
        return 1
