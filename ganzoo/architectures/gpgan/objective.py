"""GP-GAN's objective as GAN_stability trains it: the standard (non-saturating) GAN loss with
binary cross-entropy on logits, and the R1 gradient penalty on reals in every D step.

GAN_stability adds ``reg_param · ||∇_x D(x)||²`` (``reg_param`` 10) to D's loss on reals;
ganzoo's ``r1_gamma`` is the γ of the penalty ``γ/2 · ||∇_x D(x)||²`` (StyleGAN's convention),
so ``r1_gamma = 2 · reg_param`` = 20 is the same penalty. There is no lazy regularization: the
loop runs no separate R1 phase (``D_reg_interval`` None) and this objective adds the penalty to
D's main phase. ADA, when on, augments every image D sees, and R1 is taken with respect to the
reals before augmentation (as StyleGAN2-ADA does).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from ganzoo.architectures.gpgan.networks import labels_from_onehot
from ganzoo.train.loss import ChunkStats, PlainObjective
from ganzoo.errors import GanzooError


class GANStabilityLoss(PlainObjective):
    """The loss object the shared loop drives (:class:`ganzoo.train.loss.Objective`).

    Args:
        G, D: the networks being trained.
        augment_pipe: applied to every image D sees, or None.
        r1_gamma: γ of the R1 penalty ``γ/2 · ||∇D(x)||²`` on reals (20 = GAN_stability's
            ``reg_param`` 10); 0 turns it off.
        penalty: ``penalty(name, network)`` added to G's and D's main losses (EWC), or None.
    """

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, augment_pipe: Any = None, r1_gamma: float = 20.0,
                 penalty: Callable[[str, torch.nn.Module], torch.Tensor] | None = None):  # fmt: skip
        super().__init__(G, D, augment_pipe, penalty)
        self.r1_gamma = float(r1_gamma)

    def d_logits(self, img: torch.Tensor, c: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return self.D(self.augment(img, gen), c)

    def accumulate(self, phase: str, real_img: Any, real_c: Any, gen_z: Any, gen_c: Any, gain: float,
                   gen: torch.Generator) -> ChunkStats:  # fmt: skip
        """``Gmain``: ``softplus(-D(G(z)))``; ``Dmain``: ``softplus(D(G(z))) + softplus(-D(x)) +
        γ/2 ||∇_x D(x)||²``. Other phases are never due (no lazy regularization)."""
        stats = ChunkStats()
        if phase == "Gmain":
            logits = self.d_logits(self.G(gen_z, labels_from_onehot(gen_c)), gen_c, gen)
            loss = F.softplus(-logits)
            self.plus_penalty(loss.mean(), "G").mul(gain).backward()
            stats.loss_sum, stats.loss_count = float(loss.detach().sum()), loss.numel()
        elif phase == "Dmain":
            with torch.no_grad():
                fake = self.G(gen_z, labels_from_onehot(gen_c))
            loss_fake = F.softplus(self.d_logits(fake, gen_c, gen))
            self.plus_penalty(loss_fake.mean(), "D").mul(gain).backward()
            real = real_img.detach().requires_grad_(self.r1_gamma != 0)
            logits_real = self.d_logits(real, real_c, gen)
            loss_real = F.softplus(-logits_real)
            total = loss_real.mean()
            if self.r1_gamma != 0:
                (grads,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
                total = total + grads.square().sum(dim=[1, 2, 3]).mean() * (self.r1_gamma / 2)
            total.mul(gain).backward()
            stats.loss_sum = float(loss_fake.detach().sum() + loss_real.detach().sum())
            stats.loss_count = loss_real.numel()
            stats.real_logits = logits_real.detach()
        else:
            raise GanzooError(f"GP-GAN's objective has no phase {phase!r} (its R1 is part of Dmain)")
        return stats
