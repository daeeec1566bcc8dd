"""The BigGAN plug-in (``"biggan"``): class-conditional ImageNet-scale GANs with a public
discriminator, in the layout of ajbrock/BigGAN-PyTorch (Brock, Donahue & Simonyan, ICLR 2019).

Networks: :mod:`ganzoo.architectures.biggan.networks` (the release's constructor arguments,
tensor names and numerics in eval and train mode). Upstream files: the ``"biggan-pytorch"``
reader (:mod:`ganzoo.architectures.biggan.reader`, the family's :meth:`BigGAN.readers`).
Training: the release's objective (hinge loss, optional orthogonal
regularization: :mod:`ganzoo.architectures.biggan.objective`) and settings in the shared loop;
recipes ``full``, ``freezed`` and ``scratch`` (see :class:`BigGAN`).

Sampling (``GAN.sample``, ``ganzoo generate``):

* Classes: ``c`` arrives one-hot ``[N, n_classes]`` and becomes class indices; the images are
  ``G(z, G.shared(y))`` with ``G`` in eval mode (its previous mode is restored afterwards).
* Latents and truncation: each seed's latent is BigGAN's truncated normal: draws from
  ``np.random.RandomState(seed).randn`` in which every entry outside [-2, 2] is drawn again from
  the same stream (in index order, until none is left), so a seed's latent is exact on every
  machine and equals the plain ``randn`` latent wherever that lies within the bounds.
  ``truncation_psi`` (``--trunc``) scales it: ``z = psi * truncnorm(-2, 2)``, the truncation of
  the TF-Hub BigGAN models and of pytorch-pretrained-BigGAN's ``truncated_noise_sample``; psi 1
  leaves the [-2, 2] truncated normal (BigGAN-PyTorch's own ``sample.py`` draws N(0, z_var)
  without bounds, a small difference: about 4.6 % of N(0, 1) entries lie outside ±2). ``truncation_cutoff``
  and ``noise_mode`` do not apply (BigGAN has no per-layer w or noise) and are ignored.
* Batch-norm statistics: as the release samples by default (``--G_eval_mode``, its README's
  "we measure metrics by default with G in test mode"), the running statistics stored in
  G_ema's conditional BN layers (``stored_mean``/``stored_var``) are used. The paper's "standing
  statistics" (the release's ``sample.py --mybn --accumulate_stats``) are offered by
  :func:`~ganzoo.architectures.biggan.networks.standing_statistics`, which returns a copy of a
  generator with statistics averaged over seeded train-mode batches; sampling never recomputes
  them on its own, so an image depends only on its seed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganzoo._io import check_output
from ganzoo.architectures import EXPORT_SUFFIXES, Architecture, Metadata, register_architecture
from ganzoo.architectures._layers import FreezableD
from ganzoo.architectures.biggan import reader
from ganzoo.architectures.biggan.networks import (
    _G_WIDTHS,
    Attention,
    DBlock,
    Discriminator,
    GBlock,
    Generator,
    SNConv2d,
    SNEmbedding,
    SNLinear,
    bn,
    ccbn,
    latent_size,
    output_resolution,
    standing_statistics,
)
from ganzoo.errors import GanzooError
from ganzoo.readers.base import Reader

__all__ = [
    "Attention", "BigGAN", "DBlock", "Discriminator", "GBlock", "Generator", "SNConv2d", "SNEmbedding", "SNLinear",
    "TRUNCATION_BOUND", "bn", "ccbn", "standing_statistics", "truncated_latents",
]  # fmt: skip

#: Latent entries beyond ± this are drawn again (BigGAN's truncated normal).
TRUNCATION_BOUND = 2.0


def truncated_latents(seeds: Sequence[int], latent_dim: int, bound: float = TRUNCATION_BOUND) -> np.ndarray:
    """One latent per seed from the normal truncated to [-bound, bound], float64 ``[N, latent_dim]``:
    ``np.random.RandomState(seed).randn(latent_dim)``, then the entries outside the bounds drawn
    again from the same stream, in index order, until none is left."""
    out = np.empty((len(seeds), latent_dim))
    for row, seed in enumerate(seeds):
        stream = np.random.RandomState(int(seed) % (1 << 32))
        z = stream.randn(latent_dim)
        outside = np.abs(z) > bound
        while outside.any():
            z[outside] = stream.randn(int(outside.sum()))
            outside = np.abs(z) > bound
        out[row] = z
    return out


#: The release's ImageNet settings (``scripts/launch_BigGAN_bs256x8.sh`` and the defaults of its
#: ``utils.prepare_parser``) that ganzoo's loop takes.
RELEASE_LR_G, RELEASE_LR_D = 1e-4, 4e-4  # --G_lr 1e-4 --D_lr 4e-4
RELEASE_BETAS = (0.0, 0.999)  # --G_B1/--D_B1 0 (default), --G_B2/--D_B2 0.999
RELEASE_ADAM_EPS = 1e-6  # --adam_eps 1e-6 (ganzoo's loop uses 1e-8: see training_defaults)
RELEASE_D_STEPS = 1  # --num_D_steps 1 (the parser's default is 2; the ImageNet scripts set 1)
RELEASE_EMA_DECAY = 0.9999  # --ema_decay (default)
RELEASE_EMA_START = 20000  # --ema_start 20000 (iterations)


class BigGAN(FreezableD, Architecture):
    """BigGAN (BigGAN-PyTorch's networks): ``G(z, G.shared(y))``, ``D(x, y)``; class-conditional,
    truncation by scaling truncated-normal latents.

    Recipes: ``full``, ``freezed`` (D's layers from the image: each block's ``conv1``,
    ``conv2``, ``conv_sc``, then its attention as one layer; frozen layers keep their weights
    and their spectral-norm vectors) and ``scratch``. ``adafm`` is not offered: AdaFM (Zhao et
    al. 2020) modulates frozen kernels with a learned per-(output, input)-channel scale and
    shift, but BigGAN's convolutions are spectrally normalized, so a modulated kernel would need
    its own power iteration (the release's ``u0``/``sv0`` then no longer describe the weight
    that is used) and a fold back into a plain ``weight`` changes the normalized kernel; the
    class-conditional BN gains already give per-channel, per-class modulation, which ``full``
    trains. Not mergeable: merge's root must be unconditional and every BigGAN is
    class-conditional (its shared embedding and D's projection have one row per class).
    """

    name = "biggan"
    upstream_names = "BigGAN-PyTorch's networks"
    generator_class = Generator
    discriminator_class = Discriminator
    recipes = ("full", "freezed", "scratch")
    mergeable = False
    formats = ("biggan-pytorch",)

    def readers(self) -> Sequence[Reader]:
        return (Reader(reader.FORMAT, reader.sniff, reader.read, takes_config=True),)
    objective_options = ("G_ortho",)  # the release's --G_ortho (objective.py)

    def metadata(self, generator_kwargs: dict, class_names: Sequence[str] | None = None) -> Metadata:
        return Metadata(
            resolution=output_resolution(generator_kwargs),
            channels=3,
            num_classes=int(generator_kwargs.get("n_classes", 1000)),
            latent_dim=latent_size(generator_kwargs),
            truncation=True,
            class_names=list(class_names) if class_names else None,
        )

    def latents(self, seeds: Sequence[int], latent_dim: int) -> np.ndarray:
        return truncated_latents(seeds, latent_dim)

    def generate(self, G: Any, z: torch.Tensor, c: torch.Tensor, *, seeds: Sequence[int], truncation_psi: float,
                 truncation_cutoff: int | None, noise_mode: str) -> torch.Tensor:  # fmt: skip
        if c.ndim == 2 and c.shape[1] > 0:
            y = c.argmax(dim=1)
        else:
            y = torch.zeros([z.shape[0]], dtype=torch.long, device=z.device)
        was_training = G.training
        G.eval()
        try:
            return G(z * float(truncation_psi), G.shared(y))
        finally:
            G.train(was_training)

    # -- export: BigGAN-PyTorch's weights folder -----------------------------------------------

    def check_export(self, out: str | os.PathLike, overwrite: bool = False) -> Path:
        """A ``.pt``/``.pth`` name: the single file of every family; any other: the release's
        weights folder (missing or empty, or replaced with ``overwrite``)."""
        if Path(out).suffix.lower() in EXPORT_SUFFIXES:
            return super().check_export(out, overwrite=overwrite)
        return check_output(out, "dir", overwrite=overwrite)

    def export(self, gan: Any, out: str | os.PathLike, overwrite: bool = False) -> Path:
        """BigGAN-PyTorch's weights folder at ``out`` (``G_ema.pth``, ``G.pth``, ``D.pth`` for the
        networks the checkpoint has, and ``state_dict.pth`` with the release's ``config`` and
        counters: :mod:`ganzoo.architectures.biggan.writer`), which the release's networks, built
        from that ``config``, load with ``load_state_dict(strict=True)``. A ``.pt``/``.pth`` name
        gets the single file of every family instead. Either way without ganzoo-only settings
        (FreezeD's ``freeze_layers``)."""
        from ganzoo.architectures.biggan.writer import release_networks, write_release_folder

        if Path(out).suffix.lower() not in EXPORT_SUFFIXES:
            return write_release_folder(gan.networks(), out, overwrite=overwrite)
        nets = release_networks(gan.networks())
        bundle = type(gan)(nets["G_ema"], nets.get("G"), nets.get("D"), config=gan.config)  # the caller's GAN class
        return super().export(bundle, out, overwrite=overwrite)

    # -- training: BigGAN-PyTorch's objective and settings -------------------------------------

    def training_defaults(self, generator_kwargs: dict, batch: int, recipe: str | None = None) -> dict[str, Any]:
        """The release's ImageNet settings (``launch_BigGAN_bs256x8.sh``): Adam lr 1e-4 (G) and
        4e-4 (D) with betas (0, 0.999), one D step per G step, hinge loss without R1 or path
        length, G EMA with decay 0.9999 per iteration from iteration 20000.

        The EMA start: training from scratch (``recipe`` ``scratch`` or not said), it is counted
        in minibatches of ``batch`` images: ``ema_start_kimg = ema_start · batch / 1000``, so
        G_ema copies G for the first 20000 minibatches of the run and averages from the next one
        (the release's ``ema.update(itr)``, with ``itr`` counted from 1, averages from its
        20000th iteration: one minibatch earlier). Finetuning (``full``, ``freezed``), G_ema
        averages from the first minibatch (``ema_start_kimg = 0``), as the release does when it
        resumes a checkpoint: its iteration counter (138k, 100k) is restored, past the start,
        and a delay would throw the source's average away by copying G into G_ema. Adam's ``eps`` is the release's
        1e-6. Not taken (the loop's own conventions): its G/D order (D steps first; the loop runs
        G's phase first in each minibatch) and its EMA of G's buffers (the loop copies BN
        statistics and spectral-norm vectors from G into G_ema).
        """
        return {"lr_G": RELEASE_LR_G, "lr_D": RELEASE_LR_D, "betas": RELEASE_BETAS, "adam_eps": 1e-6, "r1_gamma": 0.0,
                "G_reg_interval": None, "D_reg_interval": None, "pl_weight": 0.0, "style_mixing_prob": 0.0,
                "ema_beta": RELEASE_EMA_DECAY, "ema_rampup": None,
                "ema_start_kimg": RELEASE_EMA_START * batch / 1000 if recipe in (None, "scratch") else 0.0}  # fmt: skip

    def objective(self, G: Any, D: Any, augment_pipe: Any, options: Any, penalty: Any) -> Any:
        from ganzoo.architectures.biggan.objective import BigGANLoss

        if options.r1_gamma:
            raise GanzooError(f"biggan trains with the hinge loss and no R1 penalty: r1_gamma must be 0, not {options.r1_gamma}")
        return BigGANLoss(G, D, augment_pipe, G_ortho=float(getattr(options, "G_ortho", 0.0) or 0.0), penalty=penalty)

    def widest(self, kwargs: dict, resolution: int) -> int:
        if "G_ch" in kwargs:  # G: its last block, at full resolution
            return int(kwargs["G_ch"]) * _G_WIDTHS[int(kwargs.get("resolution", 128))][-1]
        return int(kwargs.get("D_ch", 64))  # D: its first block reads the image with D_ch channels

    # -- recipes -------------------------------------------------------------------------------

    def g_blocks(self, G: Any) -> list[int]:
        return [G.bottom_width << (i + 1) for i in range(len(G.blocks))]

    def discriminator_kwargs(self, G: Any) -> dict:
        return _d_kwargs(G)



def _d_kwargs(G: Any) -> dict:
    """A discriminator for generator ``G``'s images and classes, as the release pairs them (its
    ``D_ch``, attention, spectral-norm and init settings mirror G's)."""
    kw = G.init_kwargs
    return {"D_ch": kw["G_ch"], "resolution": output_resolution(kw), "D_attn": kw["G_attn"],
            "n_classes": kw["n_classes"], "num_D_SVs": kw["num_G_SVs"], "num_D_SV_itrs": kw["num_G_SV_itrs"],
            "SN_eps": kw["SN_eps"], "D_init": kw["G_init"]}  # fmt: skip


register_architecture(BigGAN())
