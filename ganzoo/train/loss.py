"""What the shared training loop needs of an objective, whatever the architecture.

An objective (``Architecture.objective``; StyleGAN2's is
:class:`ganzoo.architectures.stylegan2.objective.StyleGAN2Loss`) runs one phase
(:data:`PHASES`) on one chunk of the minibatch in :meth:`Objective.accumulate`, calls
``backward`` with the loss scaled by ``gain`` and returns the chunk's :class:`ChunkStats`; the
loop sums chunks (and processes) into the full-batch gradient. An objective with running state
(StyleGAN2's path-length mean and its mapping network's ``w_avg``) returns the chunk's share of
what moves it in :attr:`ChunkStats.sums`/:attr:`ChunkStats.counts`; the loop sums them over
chunks and processes and hands the totals back once per phase
(:meth:`Objective.update_running`), so the result does not depend on how the minibatch is split.
The loop knows nothing of what they mean; it saves the objective's :meth:`Objective.state_dict`
with the training state (exact resume).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    real_logits: torch.Tensor | None = None  # D's logits on augmented reals (for ADA)
    #: The objective's running statistics: name -> this chunk's sum (a tensor) and its count;
    #: the loop sums both over chunks and processes for :meth:`Objective.update_running`.
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)


class Objective(Protocol):
    """The loss object of one training run.

    Attributes:
        cur_nimg: images shown so far, set by the loop before each minibatch (schedules).
    """

    cur_nimg: int
    #: The phases (of :data:`PHASES`) this objective runs; the loop asks for no other.
    phases: tuple[str, ...]

    def accumulate(self, phase: str, real_img: Any, real_c: Any, gen_z: Any, gen_c: Any, gain: float,
                   gen: torch.Generator) -> ChunkStats: ...  # fmt: skip

    def update_running(self, phase: str, sums: dict[str, torch.Tensor], counts: dict[str, float]) -> dict[str, float]:
        """Moves the objective's running state with one phase's totals of :attr:`ChunkStats.sums`
        and :attr:`ChunkStats.counts` (over chunks and processes); returns values to log."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The running state saved with the training state (exact resume)."""

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restores :meth:`state_dict` (keys it does not know are ignored)."""

    def after_phase(self, phase: str, dist: Any) -> None:
        """Called once per phase after the optimizer step (e.g. to agree on running statistics
        across processes)."""


class PlainObjective:
    """What an objective without running statistics shares (GP-GAN's, BigGAN's, a plug-in's):
    no running state, nothing to agree on between processes; the EWC penalty added to a main
    loss; ADA on what D sees.

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
        self.cur_nimg = 0

    def update_running(self, phase: str, sums: dict[str, torch.Tensor], counts: dict[str, float]) -> dict[str, float]:
        """Nothing to track."""
        return {}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Nothing to restore (a snapshot from before this interface holds a zero ``pl_mean``)."""

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
