"""The functions behind ``ganzoo.load`` and friends."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ganzoo.checkpoint import GAN, is_checkpoint_dir, register_hub_function
from ganzoo.conversion import convert, export, foreign_to_gan
from ganzoo.errors import GanzooError, UnknownModelError

__all__ = ["convert", "export", "load"]

# Suffixes of checkpoint files: a missing "runs/net.pkl" is a typo'd path, not a Hub repo id.
_FILE_SUFFIXES = {".pkl", ".pt", ".pth", ".safetensors", ".ckpt", ".bin", ".json"}


HF_HUB_PREFIX = "hf-hub:"  # as timm writes Hub models: "hf-hub:org/name", "hf-hub:org/name@revision"


def load(
    name_or_path: str | os.PathLike,
    device: str | torch.device = "cpu",
    verify: bool = True,
    revision: str | None = None,
) -> GAN:
    """Loads a GAN from a registry name, a Hub repo, a checkpoint directory or a foreign file.

    Foreign files (StyleGAN2-ADA or StyleGAN2 TF ``.pkl``, torch state-dict ``.pt``) are read
    safely and converted in memory; no code from them is executed. Registry names and aliases
    (``"imagenet-stylegan2-256"``, ``"cat"``) and Hub repo ids (``"org/name"``, also written
    ``"hf-hub:org/name"`` or ``"hf-hub:org/name@revision"`` as timm accepts them) are pulled on
    demand (:func:`ganzoo.hub.pull`); offline with a warm cache they load without network.
    :meth:`GAN.from_pretrained` is the same function under huggingface_hub's name.

    Args:
        name_or_path: a registry name or alias, a Hub repo id, a ganzoo checkpoint directory, or
            a foreign checkpoint file.
        device: where to put the networks (``'cpu'``, ``'cuda'``, ...).
        verify: check the sha256 recorded for every weight file of a checkpoint directory.
        revision: a branch, tag or commit of the Hub repo (registry names and repo ids only;
            default: the registry's pinned revision, else ``main``).

    Returns:
        The :class:`GAN` bundle.

    Raises:
        UnknownModelError: ``name_or_path`` is no existing path, registry name or Hub repo
            (the message lists the closest registry names).
        GanzooError: any problem fetching or reading it (subclasses say which); a revision
            given with a local path or twice (``hf-hub:org/name@rev`` and ``revision``).
    """
    text = str(name_or_path)
    if isinstance(name_or_path, str) and text.startswith(HF_HUB_PREFIX):
        from ganzoo.registry import is_repo_id

        repo_id, _, at = text[len(HF_HUB_PREFIX):].partition("@")
        if not is_repo_id(repo_id):
            raise UnknownModelError(f"{text}: {HF_HUB_PREFIX} takes a Hub repo id, {HF_HUB_PREFIX}org/name[@revision]")
        if at and revision is not None and at != revision:
            raise GanzooError(f"{text}: revision {at!r} in the name and revision={revision!r}; give one")
        return _load_from_hub(repo_id, at or revision, device)
    path = Path(name_or_path)
    if revision is not None and path.exists():
        raise GanzooError(f"{name_or_path}: a local checkpoint has no revision; revision= is for the Hub")
    if is_checkpoint_dir(path) or path.is_dir():
        return GAN.load(path, device=device, verify=verify)
    if path.is_file():
        return foreign_to_gan(path).to(device)
    text = str(name_or_path)
    if path.suffix.lower() in _FILE_SUFFIXES or text.startswith((".", "/", "~")) or text.count("/") > 1:
        # Clearly meant as a path: do not send it to the Hub as a repo id.
        raise UnknownModelError(f"{name_or_path}: no such checkpoint directory or file")
    return _load_from_hub(text, revision, device)


def _load_from_hub(name: str, revision: str | None, device: str | torch.device) -> GAN:
    from ganzoo.hub import pull_checkpoint

    # The pull verifies every file against config.json (``verify`` is moot here), so loading
    # skips a second hashing pass; a ``--generator-only`` pull loads as a G_ema-only GAN.
    return GAN.load(pull_checkpoint(name, revision=revision).path, device=device, verify=False, missing_ok=True)


register_hub_function("load", load)  # GAN.from_pretrained (ganzoo.checkpoint imports nothing above it)
