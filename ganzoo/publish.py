"""Publishing a checkpoint directory: ``ganzoo.push`` and ``ganzoo push DIR org/name``.

This layer prepares what a push uploads and hands it to the Hub layer (:func:`ganzoo.hub.push`,
which only sends files and renders the card): it verifies the checkpoint, turns the networks
into the form they are published in through their architecture
(:meth:`ganzoo.architectures.Architecture.for_upload`: AdaFM is folded into plain StyleGAN2
weights), renders the samples grid and computes the filter statistics the card shows
(:func:`ganzoo.analysis.filter_report`).

Layering: ``publish`` -> ``hub``, ``analysis``, ``checkpoint`` -> ``architectures``; nothing
below imports this module.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ganzoo import hub
from ganzoo._io import sha256_file
from ganzoo.analysis import filter_report
from ganzoo import api  # noqa: F401  (registers GAN.from_pretrained's load)
from ganzoo.checkpoint import CONFIG_NAME, GAN, read_config, register_hub_function
from ganzoo.errors import CheckpointError, ChecksumMismatchError

__all__ = ["prepare_upload", "push"]


def _saved_files(gan: GAN) -> dict[str, bytes]:
    """The bytes of ``config.json`` and the weight files ``gan`` saves to (a temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="ganzoo-upload-") as tmp:
        directory = gan.save(Path(tmp) / "upload")
        names = [CONFIG_NAME, *sorted(gan.config["files"])]
        return {name: (directory / name).read_bytes() for name in names}


def prepare_upload(checkpoint_dir: str | os.PathLike, samples: bool = True) -> hub.Upload:
    """What a push of ``checkpoint_dir`` uploads: config.json, the weight files, the samples grid
    and the card's filter diversity of G and D.

    Every weight file is verified against ``config.json`` first. Networks whose architecture
    publishes them in another form (:meth:`~ganzoo.architectures.Architecture.for_upload`) are
    uploaded in that form: an AdaFM checkpoint (``stylegan2-adafm``) as plain ``stylegan2``
    weights and config with a ``fold-adafm`` lineage step (a recorded training state is left
    out: its optimizer moments belong to the unfolded parameters); the files on disk are not
    changed. Other checkpoints upload their ``config.json`` and weight files byte for byte.

    Raises:
        CheckpointError: not a checkpoint, or a recorded file is missing.
        ChecksumMismatchError: a weight file differs from its recorded sha256.
    """
    checkpoint_dir = Path(checkpoint_dir)
    config = read_config(checkpoint_dir)
    files = config.get("files", {})
    for name, meta in sorted(files.items()):
        path = checkpoint_dir / name
        if not path.is_file():
            raise CheckpointError(f"{path}: missing (config.json records it)")
        digest = sha256_file(path)
        if digest != meta.get("sha256"):
            raise ChecksumMismatchError(f"{path}: sha256 {digest} != recorded {meta.get('sha256')}")
    gan = GAN.load(checkpoint_dir, verify=False)  # just verified
    published, _notes = gan.architecture.for_upload(gan)
    upload: dict[str, bytes | Path]
    if published is not gan:
        gan = published
        upload = dict(_saved_files(gan))
        config = gan.config
    else:
        upload = {CONFIG_NAME: checkpoint_dir / CONFIG_NAME}
        upload.update({name: checkpoint_dir / name for name in sorted(files)})
    report = filter_report(gan)
    return hub.Upload(
        files=upload,
        config=config,
        name=checkpoint_dir.name,
        samples=hub.gan_samples_png(gan) if samples else None,
        card={"filter_diversity": {"G": report["G_mean"], "D": report["D_mean"]}},
    )


def push(
    checkpoint_dir: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    samples: bool = True,
) -> str:
    """Uploads a checkpoint directory to the Hub in one commit, with a rendered model card.

    Creates the repo (and the branch ``revision``) when needed.

    Args:
        checkpoint_dir: a ganzoo checkpoint directory.
        repo_id: ``org/name``.
        private: create the repo private.
        revision: the branch to commit to (default ``main``).
        token: Hub token (default: ``HF_TOKEN`` / the saved login).
        commit_message: the commit message.
        samples: generate a samples grid and show it in the card.

    Returns:
        The URL of the commit.
    """
    hub.check_push_target(repo_id)  # before loading anything
    upload = prepare_upload(checkpoint_dir, samples=samples)
    return hub.push(upload, repo_id, private=private, revision=revision, token=token, commit_message=commit_message)


register_hub_function("push", push)  # GAN.push_to_hub (ganzoo.checkpoint imports nothing above it)
