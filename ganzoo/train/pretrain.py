"""``ganzoo pretrain``: train a StyleGAN2 from random init, typically on synthetic data.

A thin recipe over the training engine (:func:`ganzoo.train.runner.finetune` with the
``scratch`` recipe): it builds the networks from architecture settings instead of a source
checkpoint, turns augmentation off by default (synthetic data is unlimited, so D cannot
overfit it), and records in the lineage what the data was. On ``synth:KIND`` data (Baek &
Shim, CVPR 2022) the lineage says "trained on synthetic KIND, no real images".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ganzoo.checkpoint import GAN
from ganzoo.errors import GanzooError
from ganzoo.train.dataset import SYNTH_PREFIX

#: Architecture of ``ganzoo pretrain`` when none is given: a small StyleGAN2 that trains on a
#: CPU (the paper configuration is ``channel_base=32768, channel_max=512, mapping_layers=8``).
DEFAULT_ARCH = {"z_dim": 128, "w_dim": 128, "mapping_layers": 2, "channel_base": 1024, "channel_max": 64}
#: License of weights that ganzoo trains itself (the project's own license).
OWN_LICENSE = "apache-2.0"
#: Data spec prefix of the starter zoo's toy domains (:func:`ganzoo.starter.domain_stream`).
DOMAIN_PREFIX = "domain:"


def build_gan(resolution: int, channels: int = 3, z_dim: int | None = None, w_dim: int | None = None,
              mapping_layers: int | None = None, channel_base: int | None = None, channel_max: int | None = None,
              mbstd_group_size: int = 4) -> GAN:  # fmt: skip
    """An untrained StyleGAN2 (G, D) with the given architecture (defaults: :data:`DEFAULT_ARCH`)."""
    from ganzoo.models.stylegan2 import Discriminator, Generator

    if resolution < 4 or resolution & (resolution - 1):
        raise GanzooError(f"--resolution {resolution}: must be a power of two, at least 4")
    arch = dict(DEFAULT_ARCH)
    given = dict(z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers, channel_base=channel_base, channel_max=channel_max)
    arch.update({k: v for k, v in given.items() if v is not None})
    synthesis = {"channel_base": arch["channel_base"], "channel_max": arch["channel_max"]}
    G = Generator(arch["z_dim"], 0, arch["w_dim"], resolution, channels,
                  mapping_kwargs={"num_layers": arch["mapping_layers"]}, synthesis_kwargs=synthesis)  # fmt: skip
    D = Discriminator(0, resolution, channels, epilogue_kwargs={"mbstd_group_size": mbstd_group_size}, **synthesis)
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
    return f"trained from random init on {text if text is not None else 'in-memory images'}"


def pretrain(
    data: str | os.PathLike | torch.Tensor | None = None,
    out: str | os.PathLike | None = None,
    resolution: int | None = None,
    kimg: float | None = None,
    channels: int = 3,
    aug: str = "none",
    resume: str | os.PathLike | None = None,
    z_dim: int | None = None,
    w_dim: int | None = None,
    mapping_layers: int | None = None,
    channel_base: int | None = None,
    channel_max: int | None = None,
    **finetune_options: Any,
) -> Path:
    """Trains a new StyleGAN2 from random init; returns the output checkpoint directory.

    Args:
        data: ``synth:KIND[:SEED][?OPTIONS]`` (synthetic images made on the fly), a folder or zip of
            images, or uint8 images in memory.
        out: the run directory (it becomes the checkpoint directory).
        resolution: image size (a power of two).
        kimg: training length in thousands of images shown to D (None: 100).
        channels: 3 (RGB) or 1 (grayscale).
        aug: ``'none'`` (default: synthetic data is unlimited), ``'ada'`` or ``'fixed'``.
        resume: a run directory to continue (everything else comes from the run).
        z_dim, w_dim, mapping_layers, channel_base, channel_max: architecture
            (defaults: :data:`DEFAULT_ARCH`).
        **finetune_options: further options of :func:`ganzoo.train.runner.finetune` (``batch``,
            ``seed``, ``snap``, ``device``, ``progress``, ...).

    Raises:
        GanzooError: missing settings, bad resolution, an existing ``out``.
    """
    from ganzoo.train.runner import finetune

    if resume is not None:
        return finetune(resume=resume, kimg=kimg, data=data, **finetune_options)
    if data is None or out is None or resolution is None:
        raise GanzooError("pretrain: give --data, --resolution and --out (or --resume RUN_DIR)")
    gan = build_gan(int(resolution), channels, z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers,
                    channel_base=channel_base, channel_max=channel_max)  # fmt: skip
    note = describe_data(data)
    gan.config["source"] = {"made_by": "ganzoo pretrain", "training_data": note}
    return finetune(gan, data, out, recipe="scratch", kimg=kimg, aug=aug, source_label="random init (ganzoo pretrain)",
                    lineage_notes=[note], **finetune_options)  # fmt: skip
