"""A DCGAN (Radford et al., 2016) as a ganzoo architecture plug-in.

Everything a family needs for generate, save/load, finetune (``full`` and ``scratch``),
``analyze filters``, ``export``/``convert`` and ``rank``: a generator and discriminator whose
constructor arguments are stored in ``init_kwargs``, an :class:`~ganzoo.architectures.Architecture`
describing them, and a training objective. The entry point in ``pyproject.toml`` makes ganzoo
import this module when a checkpoint names ``"dcgan"``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.architectures import Architecture, Metadata, register_architecture
from ganzoo.train.loss import ChunkStats, PlainObjective


class Generator(nn.Module):
    """``z [N, z_dim]`` -> images ``[N, channels, size, size]`` in [-1, 1]: a linear layer to
    4x4, then transposed convolutions doubling the size, BatchNorm and ReLU between them."""

    def __init__(self, z_dim: int = 64, size: int = 32, channels: int = 3, width: int = 64):
        super().__init__()
        self.init_kwargs = dict(z_dim=z_dim, size=size, channels=channels, width=width)
        self.z_dim = z_dim
        ups = int(math.log2(size)) - 2
        widths = [width * 2 ** (ups - 1 - i) for i in range(ups)] + [channels]
        self.fc = nn.Linear(z_dim, widths[0] * 16)
        self.bn0 = nn.BatchNorm2d(widths[0])
        self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1) for a, b in zip(widths, widths[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm2d(b) for b in widths[1:-1])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn0(self.fc(z).reshape(z.shape[0], -1, 4, 4)))
        for i, up in enumerate(self.ups):
            x = up(x)
            x = torch.tanh(x) if i == len(self.ups) - 1 else F.relu(self.bns[i](x))
        return x


class Discriminator(nn.Module):
    """Images -> one logit each: strided convolutions halving the size, leaky ReLU."""

    def __init__(self, size: int = 32, channels: int = 3, width: int = 64):
        super().__init__()
        self.init_kwargs = dict(size=size, channels=channels, width=width)
        downs = int(math.log2(size)) - 2
        widths = [channels] + [width * 2**i for i in range(downs)]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in zip(widths, widths[1:]))
        self.out = nn.Linear(widths[-1] * 16, 1)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = img
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return self.out(x.flatten(1))


class DCGANLoss(PlainObjective):
    """The non-saturating GAN loss; ADA (when on) augments what D sees."""

    phases = ("Gmain", "Dmain")

    def accumulate(self, phase: str, real_img: Any, real_c: Any, gen_z: Any, gen_c: Any, gain: float,
                   gen: torch.Generator) -> ChunkStats:  # fmt: skip
        stats = ChunkStats()
        if phase == "Gmain":
            loss = F.softplus(-self.D(self.augment(self.G(gen_z), gen)))
            self.plus_penalty(loss.mean(), "G").mul(gain).backward()
        else:
            with torch.no_grad():
                fake = self.G(gen_z)
            loss_fake = F.softplus(self.D(self.augment(fake, gen)))
            real_logits = self.D(self.augment(real_img.detach(), gen))
            loss = loss_fake + F.softplus(-real_logits)
            self.plus_penalty(loss.mean(), "D").mul(gain).backward()
            stats.real_logits = real_logits.detach()
        stats.loss_sum, stats.loss_count = float(loss.detach().sum()), loss.numel()
        return stats


class DCGAN(Architecture):
    name = "dcgan"
    generator_class = Generator
    discriminator_class = Discriminator
    recipes = ("full", "scratch")

    def metadata(self, generator_kwargs: dict, class_names: Sequence[str] | None = None) -> Metadata:
        return Metadata(resolution=int(generator_kwargs["size"]), channels=int(generator_kwargs["channels"]),
                        num_classes=0, latent_dim=int(generator_kwargs["z_dim"]), truncation=False)  # fmt: skip

    def generate(self, G: Any, z: torch.Tensor, c: torch.Tensor, *, seeds: Sequence[int], truncation_psi: float,
                 truncation_cutoff: int | None, noise_mode: str) -> torch.Tensor:  # fmt: skip
        return G(z)

    def training_defaults(self, generator_kwargs: dict, batch: int, recipe: str | None = None) -> dict[str, Any]:
        return {"lr_G": 2e-4, "lr_D": 2e-4, "betas": (0.5, 0.999), "r1_gamma": 0.0}

    def objective(self, G: Any, D: Any, augment_pipe: Any, options: Any, penalty: Any) -> Any:
        return DCGANLoss(G, D, augment_pipe, penalty)

    def widest(self, kwargs: dict, resolution: int) -> int:
        return int(kwargs["width"])

    def fresh_networks(self, G: Any, D: Any | None, seed: int) -> tuple[Any, Any]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            d_kwargs = D.init_kwargs if D is not None else {k: G.init_kwargs[k] for k in ("size", "channels", "width")}
            return Generator(**G.init_kwargs).requires_grad_(False), Discriminator(**d_kwargs).requires_grad_(False)


register_architecture(DCGAN())
