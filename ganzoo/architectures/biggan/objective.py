"""BigGAN's objective as BigGAN-PyTorch trains it: the hinge loss, with optional orthogonal
regularization of G, inside ganzoo's shared loop.

* D (phase ``Dmain``): ``mean(relu(1 - D(x, y))) + mean(relu(1 + D(G(z, G.shared(y')), y')))``.
  As in the release's ``G_D`` module, the fakes and the reals go through D in one forward (the
  batch concatenated, fakes first), so D's spectrally normalized layers take one power-iteration
  step per D step, as upstream; G makes the fakes without gradients, in train mode (its batch
  norm statistics and spectral-norm vectors update there too, as upstream).
* G (phase ``Gmain``): ``-mean(D(G(z, G.shared(y)), y))``.
* Orthogonal regularization (the release's ``--G_ortho``, its "modified" form, off by default
  and in the ImageNet launch scripts): for every G parameter with at least two axes except the
  shared class embedding, the penalty ``strength/2 · ||(W Wᵀ) ⊙ (1 - I)||²_F`` with ``W`` the
  parameter as ``[rows, -1]``, whose gradient ``strength · 2 ((W Wᵀ) ⊙ (1 - I)) W`` is what the
  release adds to G's gradient before its step.

There is no R1 and no path-length term: the loop's ``Greg``/``Dreg`` phases are never due
(``r1_gamma`` 0, ``pl_weight`` 0). Classes arrive one-hot and become indices. ADA, when on,
augments every image D sees.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from ganzoo.train.loss import ChunkStats, PlainObjective
from ganzoo.errors import GanzooError


def labels_of(c: torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
    """Class indices ``[n]`` from one-hot rows ``[n, K]`` (``[n, 0]``: class 0)."""
    if c is not None and c.ndim == 2 and c.shape[1] > 0:
        return c.argmax(dim=1)
    return torch.zeros([n], dtype=torch.long, device=device)


def ortho_penalty(G: torch.nn.Module, strength: float) -> torch.Tensor:
    """``strength/2 · Σ ||(W Wᵀ) ⊙ (1 - I)||²`` over G's parameters of two or more axes, the shared
    embedding excepted (its gradient is BigGAN-PyTorch's ``utils.ortho``)."""
    shared = {id(p) for p in G.shared.parameters()}
    total = torch.zeros([], device=next(G.parameters()).device)
    for param in G.parameters():
        if param.ndim < 2 or id(param) in shared:
            continue
        w = param.reshape(param.shape[0], -1)
        off_diagonal = (w @ w.t()) * (1 - torch.eye(w.shape[0], device=w.device, dtype=w.dtype))
        total = total + off_diagonal.square().sum()
    return total * (strength / 2)


class BigGANLoss(PlainObjective):
    """The loss object the shared loop drives (:class:`ganzoo.train.loss.Objective`).

    Args:
        G, D: the networks being trained (both in train mode: the loop's doing).
        augment_pipe: applied to every image D sees, or None.
        G_ortho: strength of the orthogonal regularization of G (the release's ``--G_ortho``;
            0, the default, turns it off; the paper used 1e-4).
        penalty: ``penalty(name, network)`` added to G's and D's main losses (EWC), or None.
    """

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, augment_pipe: Any = None, G_ortho: float = 0.0,
                 penalty: Callable[[str, torch.nn.Module], torch.Tensor] | None = None):  # fmt: skip
        super().__init__(G, D, augment_pipe, penalty)
        self.G_ortho = float(G_ortho)

    def after_phase(self, phase: str, dist: Any) -> None:
        """Nothing to agree on (each process's batch norm statistics are its own, as in the
        release's non-synchronized BN)."""

    def generate(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.G(z, self.G.shared(y))

    def accumulate(self, phase: str, real_img: Any, real_c: Any, gen_z: Any, gen_c: Any, gain: float,
                   gen: torch.Generator) -> ChunkStats:  # fmt: skip
        """``Gmain``: ``-D(G(z))`` (+ orthogonal regularization); ``Dmain``: ``relu(1 - D(x)) +
        relu(1 + D(G(z)))``. Other phases are never due."""
        stats = ChunkStats()
        n = gen_z.shape[0]
        y_fake = labels_of(gen_c, n, gen_z.device)
        if phase == "Gmain":
            logits = self.D(self.augment(self.generate(gen_z, y_fake), gen), y_fake).reshape(n)
            loss = -logits
            total = self.plus_penalty(loss.mean(), "G")
            if self.G_ortho != 0:
                total = total + ortho_penalty(self.G, self.G_ortho)
            total.mul(gain).backward()
            stats.loss_sum, stats.loss_count = float(loss.detach().sum()), loss.numel()
        elif phase == "Dmain":
            with torch.no_grad():
                fake = self.generate(gen_z, y_fake)
            m = real_img.shape[0]
            y_real = labels_of(real_c, m, real_img.device)
            images = self.augment(torch.cat([fake, real_img.detach()]), gen)
            logits = self.D(images, torch.cat([y_fake, y_real])).reshape(n + m)
            logits_fake, logits_real = logits[:n], logits[n:]
            loss_fake, loss_real = F.relu(1 + logits_fake), F.relu(1 - logits_real)
            total = self.plus_penalty(loss_real.mean() + loss_fake.mean(), "D")
            total.mul(gain).backward()
            stats.loss_sum = float(loss_fake.detach().sum() + loss_real.detach().sum())
            stats.loss_count = m
            stats.real_logits = logits_real.detach()
        else:
            raise GanzooError(f"BigGAN's objective has no phase {phase!r} (no R1 or path-length terms)")
        return stats
