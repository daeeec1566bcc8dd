"""``ganzoo pretrain``: train a StyleGAN2 from random init, typically on synthetic data.

A thin recipe over the training engine (:func:`ganzoo.train.runner.finetune` with the
``scratch`` recipe): it builds the networks of
:data:`~ganzoo.architectures.DEFAULT_ARCHITECTURE` (through the architecture table) from
architecture settings instead of a source checkpoint, turns augmentation off by default (synthetic data is unlimited, so D cannot
overfit it), and records in the lineage what the data was. On ``synth:KIND`` data (Baek &
Shim, CVPR 2022) the lineage says "trained on synthetic KIND, no real images".
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ganzoo.architectures import DEFAULT_ARCHITECTURE, get_architecture
from ganzoo.checkpoint import GAN
from ganzoo.errors import GanzooError
from ganzoo.train.dataset import SYNTH_PREFIX
from ganzoo.train.options import FinetuneOptions, default_batch

#: Architecture of ``ganzoo pretrain`` when none is given: a small StyleGAN2 that trains on a
#: CPU (the paper configuration is ``channel_base=32768, channel_max=512, mapping_layers=8``).
DEFAULT_ARCH = {"z_dim": 128, "w_dim": 128, "mapping_layers": 2, "channel_base": 1024, "channel_max": 64}
#: License of weights that ganzoo trains itself (the project's own license).
OWN_LICENSE = "apache-2.0"
#: Data spec prefix of the starter zoo's toy domains (:func:`ganzoo.starter.domain_stream`).
DOMAIN_PREFIX = "domain:"
#: Data spec prefix of a class-conditional stream over starter domains (:func:`ganzoo.starter.classes_stream`).
CLASSES_PREFIX = "classes:"


#: The flag of each architecture setting.
ARCH_FLAGS = {"z_dim": "--z-dim", "w_dim": "w_dim", "mapping_layers": "--mapping-layers", "channel_base": "--channel-base",
              "channel_max": "--channel-max"}  # fmt: skip


def architecture(resolution: int, channels: int = 3, **given: int | None) -> dict:
    """The architecture settings (:data:`DEFAULT_ARCH` where not given), checked: a power-of-two
    resolution, 1, 3 or 4 channels, positive sizes, and channels left at the highest resolution.

    Raises:
        GanzooError: one line naming the flag.
    """
    from ganzoo.train.checks import check_architecture, check_number

    check_number("--resolution", resolution, low=4, integer=True)
    if int(resolution) & (int(resolution) - 1):
        raise GanzooError(f"--resolution {resolution}: must be a power of two, at least 4")
    if channels not in (1, 3, 4):
        raise GanzooError(f"--channels {channels}: must be 3 (RGB), 1 (grayscale) or 4 (RGBA)")
    arch = dict(DEFAULT_ARCH)
    arch.update({k: v for k, v in given.items() if v is not None})
    for key, value in arch.items():
        check_number(ARCH_FLAGS[key], value, low=1, integer=True)
    check_architecture(int(resolution), int(arch["channel_base"]), int(arch["channel_max"]))
    return {k: int(v) for k, v in arch.items()}


def build_gan(resolution: int, channels: int = 3, z_dim: int | None = None, w_dim: int | None = None,
              mapping_layers: int | None = None, channel_base: int | None = None, channel_max: int | None = None,
              mbstd_group_size: int = 4) -> GAN:  # fmt: skip
    """An untrained StyleGAN2 (G, D) with the given architecture (defaults: :data:`DEFAULT_ARCH`),
    built by the classes of :data:`~ganzoo.architectures.DEFAULT_ARCHITECTURE`."""
    family = get_architecture(DEFAULT_ARCHITECTURE)
    arch = architecture(resolution, channels, z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers,
                        channel_base=channel_base, channel_max=channel_max)  # fmt: skip
    synthesis = {"channel_base": arch["channel_base"], "channel_max": arch["channel_max"]}
    G = family.network_class("G")(z_dim=arch["z_dim"], c_dim=0, w_dim=arch["w_dim"], img_resolution=resolution,
                                  img_channels=channels, mapping_kwargs={"num_layers": arch["mapping_layers"]},
                                  synthesis_kwargs=synthesis)  # fmt: skip
    D = family.network_class("D")(c_dim=0, img_resolution=resolution, img_channels=channels,
                                  epilogue_kwargs={"mbstd_group_size": mbstd_group_size}, **synthesis)  # fmt: skip
    return GAN(G.eval(), None, D.eval(), config={"license": OWN_LICENSE})


def describe_data(data: Any) -> str:
    """The sentence the lineage records about the training data."""
    text = os.fspath(data) if isinstance(data, (str, os.PathLike)) else getattr(data, "path", None)
    if text is not None and text.startswith(SYNTH_PREFIX):
        kind = text[len(SYNTH_PREFIX) :].split("?", 1)[0].split(":", 1)[0]  # synth:KIND[:SEED][?OPTIONS]
        return f"trained on synthetic {kind}, no real images (ganzoo.synth, made on the fly from {text})"
    if text is not None and text.startswith(DOMAIN_PREFIX):
        name = text[len(DOMAIN_PREFIX) :]
        return f"trained on the synthetic toy domain {name}, no real images (ganzoo.starter, made on the fly)"
    if text is not None and text.startswith(CLASSES_PREFIX):
        names = text[len(CLASSES_PREFIX) :].replace(",", ", ")
        return f"trained class-conditionally on the synthetic domains {names}, no real images (ganzoo.starter, made on the fly)"
    return f"trained from random init on {text if text is not None else 'in-memory images'}"


def pretrain(
    data: str | os.PathLike | torch.Tensor | None = None,
    out: str | os.PathLike | None = None,
    resolution: int | None = None,
    *,
    options: FinetuneOptions | None = None,
    channels: int | None = None,
    resume: str | os.PathLike | None = None,
    z_dim: int | None = None,
    w_dim: int | None = None,
    mapping_layers: int | None = None,
    channel_base: int | None = None,
    channel_max: int | None = None,
    **settings: Any,
) -> Path:
    """Trains a new StyleGAN2 from random init; returns the output checkpoint directory.

    Args:
        data: ``synth:KIND[:SEED][?OPTIONS]`` (synthetic images made on the fly), a folder or zip of
            images, or uint8 images in memory.
        out: the run directory (it becomes the checkpoint directory).
        resolution: image size (a power of two).
        options: the run's settings (:class:`~ganzoo.train.options.FinetuneOptions`: ``kimg``,
            ``batch``, ``seed``, ``snap``, ``device``, ``progress``, ...); ``aug`` None is
            ``'none'`` here (synthetic data is unlimited); the recipe is ``scratch``.
        channels: 3 (RGB; None: 3) or 1 (grayscale).
        resume: a run directory to continue (everything else comes from the run: architecture
            settings that differ from the run's are refused, as :func:`ganzoo.finetune` refuses
            its settings).
        z_dim, w_dim, mapping_layers, channel_base, channel_max: architecture
            (defaults: :data:`DEFAULT_ARCH`).
        **settings: ``FinetuneOptions`` (and ``TrainingOptions``) fields, filled in over ``options``.

    Raises:
        TypeError: a keyword that is no setting, or a setting pretrain makes itself (``recipe``,
            ``source_label``, ``lineage_notes``).
        GanzooError: missing settings, bad resolution or architecture, a size that cannot fit in
            memory (before anything is built), an existing ``out``.
    """
    from ganzoo.train.runner import finetune

    options = FinetuneOptions.of(options, settings, "pretrain")
    options = replace(options, progress_label="pretrain" if options.progress_label is None else options.progress_label)
    given = {"z_dim": z_dim, "w_dim": w_dim, "mapping_layers": mapping_layers, "channel_base": channel_base,
             "channel_max": channel_max}  # fmt: skip
    if resume is not None:
        _check_resume_architecture(Path(resume), resolution=resolution, channels=channels, **given)
        return finetune(resume=resume, data=data, options=options)
    if data is None or out is None or resolution is None:
        raise GanzooError("pretrain: give --data, --resolution and --out (or --resume RUN_DIR)")
    own = sorted(set(options.keywords()) & {"recipe", "source_label", "lineage_notes"})
    if own:
        raise TypeError(f"pretrain() sets {', '.join(own)} itself (a run from random init: the scratch recipe)")
    channels = 3 if channels is None else channels
    arch = architecture(resolution, channels, **given)
    _check_size(int(resolution), channels, arch, options)
    gan = build_gan(int(resolution), channels, **given)
    note = describe_data(data)
    gan.config["source"] = {"made_by": "ganzoo pretrain", "training_data": note}
    options = replace(options, recipe="scratch", aug="none" if options.aug is None else options.aug,
                      source_label="random init (ganzoo pretrain)", lineage_notes=[note])  # fmt: skip
    return finetune(gan, data, out, options=options)


def _check_size(resolution: int, channels: int, arch: dict, options: FinetuneOptions) -> None:
    """Refuses, before anything is built, a device that is not there, settings out of range
    and sizes that cannot fit in memory (the noise buffers alone of an absurd resolution fill it)."""
    from ganzoo.train import checks

    device = checks.check_device(options.device)
    options.check()  # the rest of finetune's checks, before the build
    top = checks.channels_at(resolution, arch["channel_base"], arch["channel_max"])
    chunk = int(options.batch_gpu or (options.batch or default_batch(resolution)) // checks.world_size())
    checks.check_memory(resolution, channels, top, top, max(chunk, 1), device)


def _check_resume_architecture(run_dir: Path, **given: int | None) -> None:
    """Refuses architecture settings that differ from those of the run being resumed (read from
    its newest snapshot's ``config.json``), in one line naming them."""
    import json

    from ganzoo.train.rundir import latest_snapshot

    given = {k: v for k, v in given.items() if v is not None}
    snapshot = latest_snapshot(run_dir)
    if not given or snapshot is None:
        return  # nothing asked, or nothing to compare with (finetune's resume says why)
    try:
        kwargs = json.loads((snapshot / "config.json").read_text(encoding="utf-8"))["generator"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    synth, mapping = kwargs.get("synthesis_kwargs") or {}, kwargs.get("mapping_kwargs") or {}
    theirs = {"resolution": kwargs.get("img_resolution"), "channels": kwargs.get("img_channels"), "z_dim": kwargs.get("z_dim"),
              "w_dim": kwargs.get("w_dim"), "mapping_layers": mapping.get("num_layers", 8),
              "channel_base": synth.get("channel_base", 32768), "channel_max": synth.get("channel_max", 512)}  # fmt: skip
    flags = {"resolution": "--resolution", "channels": "--channels", **ARCH_FLAGS}
    differ = [f"{flags[k]} {v} (the run's: {theirs[k]})" for k, v in given.items() if v != theirs[k]]
    if differ:
        raise GanzooError(f"{run_dir}: cannot resume with {', '.join(differ)}: a resumed run keeps its architecture; "
                          f"drop {'it' if len(differ) == 1 else 'them'}, or start a new run with another --out")  # fmt: skip
