"""The functions behind ``ganzoo.load`` and friends."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ganzoo.checkpoint import GAN, is_checkpoint_dir
from ganzoo.convert import convert, export, foreign_to_gan
from ganzoo.errors import UnknownModelError

__all__ = ["convert", "export", "load"]


def load(
    name_or_path: str | os.PathLike,
    device: str | torch.device = "cpu",
    verify: bool = True,
) -> GAN:
    """Loads a GAN from a checkpoint directory or a foreign checkpoint file.

    Foreign files (StyleGAN2-ADA or StyleGAN2 TF ``.pkl``, torch state-dict ``.pt``) are read
    safely and converted in memory; no code from them is executed.

    Args:
        name_or_path: a ganzoo checkpoint directory, or a foreign checkpoint file.
        device: where to put the networks (``'cpu'``, ``'cuda'``, ...).
        verify: check the sha256 recorded for every weight file of a checkpoint directory.

    Returns:
        The :class:`GAN` bundle.

    Raises:
        UnknownModelError: ``name_or_path`` is not an existing directory or file.
        GanzooError: any problem reading it (subclasses say which).
    """
    path = Path(name_or_path)
    if is_checkpoint_dir(path) or path.is_dir():
        return GAN.load(path, device=device, verify=verify)
    if path.is_file():
        return foreign_to_gan(path).to(device)
    raise UnknownModelError(f"{name_or_path}: no such checkpoint directory or file")
