"""The functions behind ``ganzoo.load`` and friends."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ganzoo.checkpoint import GAN, is_checkpoint_dir
from ganzoo.readers import convert, export, foreign_to_gan
from ganzoo.errors import UnknownModelError

__all__ = ["convert", "export", "load"]

# Suffixes of checkpoint files: a missing "runs/net.pkl" is a typo'd path, not a Hub repo id.
_FILE_SUFFIXES = {".pkl", ".pt", ".pth", ".safetensors", ".ckpt", ".bin", ".json"}


def load(
    name_or_path: str | os.PathLike,
    device: str | torch.device = "cpu",
    verify: bool = True,
) -> GAN:
    """Loads a GAN from a registry name, a Hub repo, a checkpoint directory or a foreign file.

    Foreign files (StyleGAN2-ADA or StyleGAN2 TF ``.pkl``, torch state-dict ``.pt``) are read
    safely and converted in memory; no code from them is executed. Registry names and aliases
    (``"imagenet-stylegan2-256"``, ``"cat"``) and Hub repo ids (``"org/name"``) are pulled on
    demand (:func:`ganzoo.hub.pull`); offline with a warm cache they load without network.

    Args:
        name_or_path: a registry name or alias, a Hub repo id, a ganzoo checkpoint directory, or
            a foreign checkpoint file.
        device: where to put the networks (``'cpu'``, ``'cuda'``, ...).
        verify: check the sha256 recorded for every weight file of a checkpoint directory.

    Returns:
        The :class:`GAN` bundle.

    Raises:
        UnknownModelError: ``name_or_path`` is no existing path, registry name or Hub repo
            (the message lists the closest registry names).
        GanzooError: any problem fetching or reading it (subclasses say which).
    """
    path = Path(name_or_path)
    if is_checkpoint_dir(path) or path.is_dir():
        return GAN.load(path, device=device, verify=verify)
    if path.is_file():
        return foreign_to_gan(path).to(device)
    text = str(name_or_path)
    if path.suffix.lower() in _FILE_SUFFIXES or text.startswith((".", "/", "~")) or text.count("/") > 1:
        # Clearly meant as a path: do not send it to the Hub as a repo id.
        raise UnknownModelError(f"{name_or_path}: no such checkpoint directory or file")
    from ganzoo.hub import pull_checkpoint

    # The pull verifies every file against config.json (``verify`` is moot here), so loading
    # skips a second hashing pass; a ``--generator-only`` pull loads as a G_ema-only GAN.
    return GAN.load(pull_checkpoint(text).path, device=device, verify=False, missing_ok=True)
