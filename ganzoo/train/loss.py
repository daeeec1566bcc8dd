"""What the shared training loop needs of an objective, whatever the architecture.

An objective (``Architecture.objective``; StyleGAN2's is
:class:`ganzoo.architectures.stylegan2.objective.StyleGAN2Loss`) runs one phase
(:data:`PHASES`) on one chunk of the minibatch in :meth:`Objective.accumulate`, calls
``backward`` with the loss scaled by ``gain`` and returns the chunk's :class:`ChunkStats`; the
loop sums chunks (and processes) into the full-batch gradient. Statistics that update running
state (``pl_mean``, the mapping network's ``w_avg``) are returned and applied once per phase by
the loop (with :func:`update_w_avg` and :meth:`Objective.update_pl_mean`), so the result does
not depend on how the minibatch is split into chunks or processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

PHASES = ("Gmain", "Greg", "Dmain", "Dreg")


def update_w_avg(mapping: torch.nn.Module, w_sum: torch.Tensor, w_count: float) -> None:
    """Moves the mapping network's running mean ``w_avg`` towards the mean of one phase's ``w``.

    ``w_avg ← lerp(w_sum / w_count, w_avg, w_avg_beta)``: what ``G.mapping(update_emas=True)``
    does on one batch, applied once to the whole phase (all chunks and processes: the caller
    sums ``w_sum``/``w_count`` first). A no-op for a mapping that tracks no ``w_avg``.
    """
    if getattr(mapping, "w_avg_beta", None) is None or not hasattr(mapping, "w_avg"):
        return
    w_mean = w_sum.to(torch.float32) / w_count
    mapping.w_avg.copy_(w_mean.lerp(mapping.w_avg, mapping.w_avg_beta))


@dataclass
class ChunkStats:
    """What one chunk of one phase reports back to the loop (sums, to be reduced)."""

    loss_sum: float = 0.0  # sum over samples of the phase's main loss term
    loss_count: int = 0
    w_sum: torch.Tensor | None = None  # sum of the mapping outputs w (for w_avg)
    w_count: int = 0
    pl_length_mean: torch.Tensor | None = None  # this chunk's mean path length (for pl_mean)
    real_logits: torch.Tensor | None = None  # D's logits on augmented reals (for ADA)


class Objective(Protocol):
    """The loss object of one training run.

    Attributes:
        pl_mean: a scalar tensor of running state saved with the training state (exact resume);
            objectives without one keep a zero.
        cur_nimg: images shown so far, set by the loop before each minibatch (schedules).
    """

    pl_mean: torch.Tensor
    cur_nimg: int
    #: The phases (of :data:`PHASES`) this objective runs; the loop asks for no other.
    phases: tuple[str, ...]

    def accumulate(self, phase: str, real_img: Any, real_c: Any, gen_z: Any, gen_c: Any, gain: float,
                   gen: torch.Generator) -> ChunkStats: ...  # fmt: skip

    def update_pl_mean(self, mean_length: Any) -> None: ...

    def update_w_avg(self, w_sum: torch.Tensor, w_count: float) -> None:
        """Applies one phase's sum of :attr:`ChunkStats.w_sum` (over chunks and processes) to the
        generator's running mean latent code, if it keeps one (:func:`update_w_avg`)."""

    def after_phase(self, phase: str, dist: Any) -> None:
        """Called once per phase after the optimizer step (e.g. to agree on running statistics
        across processes)."""


class PlainObjective:
    """What an objective without StyleGAN's running statistics shares (GP-GAN's, BigGAN's): no
    path length (``pl_mean`` stays 0), no mean latent code, nothing to agree on between
    processes; the EWC penalty added to a main loss; ADA on what D sees.

    Args:
        G, D: the networks being trained.
        augment_pipe: applied to every image D sees, or None.
        penalty: ``penalty(name, network)`` added to G's and D's main losses (EWC), or None.
    """

    #: One G and one D phase per minibatch; a regularizer is part of a main phase.
    phases: tuple[str, ...] = ("Gmain", "Dmain")

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, augment_pipe: Any = None,
                 penalty: Any = None):  # fmt: skip
        self.G, self.D, self.augment_pipe = G, D, augment_pipe
        self.penalty = penalty
        self.pl_mean = torch.zeros([], device=next(G.parameters()).device)
        self.cur_nimg = 0

    def update_pl_mean(self, mean_length: Any) -> None:
        """Nothing to track."""

    def update_w_avg(self, w_sum: torch.Tensor, w_count: float) -> None:
        """Nothing to track: no mapping network."""

    def after_phase(self, phase: str, dist: Any) -> None:
        """Nothing to agree on."""

    def plus_penalty(self, loss: torch.Tensor, name: str) -> torch.Tensor:
        """``loss`` plus the penalty of network ``name`` (``'G'`` or ``'D'``), if any."""
        return loss if self.penalty is None else loss + self.penalty(name, self.G if name == "G" else self.D)

    def augment(self, img: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``img`` as D sees it: augmented when ADA (or fixed augmentation) is on."""
        return img if self.augment_pipe is None else self.augment_pipe(img, generator=gen)


class AnchorPenalty:
    """The quadratic weight-anchoring penalty ``weight · Σ_k F_k (θ_k − θ*_k)²`` (EWC, Li et al.
    2020, with F the diagonal Fisher; L2-SP with F = 1), for an objective's ``penalty``.

    Args:
        tensors: ``anchor.<G|D>.<parameter name>`` (θ*) and ``fisher.<G|D>.<parameter name>``
            (F); parameters without an anchor are not penalized.
        weight: λ.
    """

    def __init__(self, tensors: dict[str, torch.Tensor], weight: float):
        self.tensors = tensors
        self.weight = float(weight)

    def __call__(self, name: str, net: torch.nn.Module) -> torch.Tensor:
        total = torch.zeros([], device=next(net.parameters()).device)
        for key, param in net.named_parameters():
            anchor = self.tensors.get(f"anchor.{name}.{key}")
            if anchor is not None:
                fisher = self.tensors[f"fisher.{name}.{key}"].to(param.device)
                total = total + (fisher * (param - anchor.to(param.device)).square()).sum()
        return total * self.weight
