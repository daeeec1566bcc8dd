"""The BigGAN plug-in (``"biggan"``): class-conditional ImageNet-scale GANs with a public
discriminator, in the layout of ajbrock/BigGAN-PyTorch (Brock, Donahue & Simonyan, ICLR 2019).

Networks: :mod:`ganzoo.architectures.biggan.networks` (the release's constructor arguments,
tensor names and numerics in eval and train mode). Upstream files: the ``"biggan-pytorch"``
reader (:mod:`ganzoo.architectures.biggan.reader`), registered with :mod:`ganzoo.readers` when
this module is imported. Training hooks (objective, recipes) are not there yet: ``recipes = ()``.

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

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ganzoo.architectures import Architecture, Metadata, register_architecture
from ganzoo.architectures.biggan.networks import (
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


class BigGAN(Architecture):
    """BigGAN (BigGAN-PyTorch's networks): ``G(z, G.shared(y))``, ``D(x, y)``; class-conditional,
    truncation by scaling truncated-normal latents."""

    name = "biggan"
    generator_class = Generator
    discriminator_class = Discriminator
    recipes = ()
    mergeable = False
    formats = ("biggan-pytorch",)

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


register_architecture(BigGAN())


def _register_reader() -> None:
    from ganzoo.architectures.biggan.reader import FORMAT, read, sniff
    from ganzoo.readers import _READERS, Reader, register_reader

    if not any(r.format == FORMAT for r in _READERS):
        register_reader(Reader(FORMAT, sniff, read, takes_config=True))


_register_reader()
