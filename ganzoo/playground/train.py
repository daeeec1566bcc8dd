"""Adversarial training of a stack of independent 2-D GANs, as in the authors' playground.

The schedule follows the authors' public training loop: every iteration makes one D step on a
fresh real batch and a fresh fake batch; every ``d_steps``-th iteration (starting with the
first) is followed by one G step on a fresh fake batch. So ``n`` G steps take ``d_steps·(n-1)+1``
D steps. Losses are the standard GAN losses with the non-saturating generator loss::

    L_D = -log D(x_real) - log(1 - D(G(z)))        L_G = -log D(G(z))

computed from logits as ``softplus`` terms (the same functions as the paper's sigmoid + log,
without its overflow at saturated logits). Both networks use Adam (lr 2e-4, β = (0.5, 0.999))
with fresh optimiser state at the start of every run, as the authors' finetuning does.

Every model of a stack sees its own real batch and its own latents; its loss is the batch mean
of its own samples, and the stack minimises the *sum* of the per-model losses, so each model
receives exactly its own gradient and (Adam being elementwise) its own update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from ganzoo.playground.data import Distribution, sample_per_model
from ganzoo.playground.nets import DiscriminatorStack, GeneratorStack


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by pretraining and finetuning (the paper's values).

    Attributes:
        batch_size: real and fake points per model per step.
        d_steps: D steps per G step.
        lr: Adam learning rate of both networks.
        beta1: Adam β₁.
        beta2: Adam β₂.
    """

    batch_size: int = 64
    d_steps: int = 4
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999


def discriminator_loss(D: DiscriminatorStack, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Sum over models of each model's mean ``-log D(real) - log(1 - D(fake))``.

    Args:
        D: the discriminators.
        real: ``[M, B, 2]`` target points.
        fake: ``[M, B, 2]`` generated points.

    Returns:
        Scalar loss.
    """
    # One pass over real and fake together: D has no batch statistics, so this is the same as
    # two passes, with half the (small, overhead-bound) matrix products.
    logits = D(torch.cat([real, fake], dim=1))                # [M, 2B]
    real_logits, fake_logits = logits.split([real.shape[1], fake.shape[1]], dim=1)
    return (F.softplus(-real_logits).mean(dim=1) + F.softplus(fake_logits).mean(dim=1)).sum()


def generator_loss(D: DiscriminatorStack, fake: torch.Tensor) -> torch.Tensor:
    """Sum over models of each model's mean non-saturating loss ``-log D(G(z))``.

    Args:
        D: the discriminators.
        fake: ``[M, B, 2]`` generated points.

    Returns:
        Scalar loss.
    """
    return F.softplus(-D(fake)).mean(dim=1).sum()


def train_gans(
    G: GeneratorStack,
    D: DiscriminatorStack,
    data: Sequence[Distribution],
    g_steps: int,
    generator: torch.Generator,
    config: TrainConfig = TrainConfig(),
    after_g_step: Optional[Callable[[int], None]] = None,
) -> None:
    """Trains every (G, D) pair of the stacks on its own distribution, in place.

    Args:
        G: ``M`` generators (left in training mode).
        D: ``M`` discriminators.
        data: one real distribution per model.
        g_steps: number of G steps.
        generator: randomness for real batches and latents.
        config: optimisation settings.
        after_g_step: called with the 1-based count of G steps done after each G step (for
            snapshots, evaluations and progress); it may switch ``G`` to eval mode and back.
    """
    if len(data) != G.num_models or D.num_models != G.num_models:
        raise ValueError(f"{G.num_models} generators, {D.num_models} discriminators, {len(data)} distributions")
    g_params, d_params = list(G.parameters()), list(D.parameters())
    opt_g = torch.optim.Adam(g_params, lr=config.lr, betas=(config.beta1, config.beta2), fused=True)
    opt_d = torch.optim.Adam(d_params, lr=config.lr, betas=(config.beta1, config.beta2), fused=True)
    num_models, batch = G.num_models, config.batch_size
    G.train()
    done = 0
    iteration = 0
    while done < g_steps:
        real = sample_per_model(data, batch, generator)                      # [M, B, 2]
        z = torch.randn(num_models, batch, G.z_dim, generator=generator)      # [M, B, z]
        with torch.no_grad():
            # A training-mode forward, as in the reference loop: it also moves G's running
            # BatchNorm statistics, which the eval-mode metrics use.
            fake = G(z)
        _set_grads(d_params, torch.autograd.grad(discriminator_loss(D, real, fake), d_params))
        opt_d.step()

        if iteration % config.d_steps == 0:
            z = torch.randn(num_models, batch, G.z_dim, generator=generator)
            # Gradients for G only: D's weight gradients of this loss are never needed.
            _set_grads(g_params, torch.autograd.grad(generator_loss(D, G(z)), g_params))
            opt_g.step()
            done += 1
            if after_g_step is not None:
                after_g_step(done)
                G.train()
        iteration += 1


def _set_grads(params: list[torch.Tensor], grads: Sequence[torch.Tensor]) -> None:
    for param, grad in zip(params, grads):
        param.grad = grad


@torch.no_grad()
def sample_generators(G: GeneratorStack, n: int, generator: torch.Generator) -> torch.Tensor:
    """Draws ``n`` points from every generator in eval mode (running BatchNorm statistics), as
    the authors' metrics do; restores the previous mode.

    Args:
        G: the generators.
        n: points per generator.
        generator: randomness for the latents.

    Returns:
        ``[M, n, 2]`` points.
    """
    was_training = G.training
    G.eval()
    try:
        return G(torch.randn(G.num_models, n, G.z_dim, generator=generator))
    finally:
        G.train(was_training)
