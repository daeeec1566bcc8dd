"""The merge's weight operations: averaging GANs of one architecture, the conditional conversion
that keeps the averaged behaviour, and EWC's anchor (the Fisher of the root's own G and D)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import torch

from ganzoo._build import build_strict
from ganzoo._io import atomic_path
from ganzoo.checkpoint import GAN
from ganzoo.errors import GanzooError


def average_gans(gans: Sequence[GAN]) -> GAN:
    """The element-wise mean of the weights (G, G_ema and D) of GANs of one architecture.

    A GAN without a raw G contributes its G_ema in G's place. Non-float buffers are taken from
    the first GAN. The config is the first GAN's.

    Raises:
        GanzooError: the GANs differ in tensor names or shapes, or one has no D.
    """
    def mean_of(nets: list[torch.nn.Module], role: str) -> torch.nn.Module:
        states = [net.state_dict() for net in nets]
        first = states[0]
        for state in states[1:]:
            if state.keys() != first.keys() or any(state[k].shape != first[k].shape for k in first):
                raise GanzooError(f"merge: the {role} networks to average differ in architecture")
        avg = {}
        for key, tensor in first.items():
            if tensor.is_floating_point():
                avg[key] = torch.stack([s[key].detach().cpu().float() for s in states]).mean(dim=0).to(tensor.dtype)
            else:
                avg[key] = tensor.detach().cpu().clone()
        return build_strict(type(nets[0]), copy.deepcopy(nets[0].init_kwargs), avg, role)

    if any(g.D is None for g in gans):
        raise GanzooError("merge: every model to average needs a discriminator")
    G_ema = mean_of([g.G_ema for g in gans], "generator")
    G = mean_of([g.G if g.G is not None else g.G_ema for g in gans], "generator")
    D = mean_of([g.D for g in gans], "discriminator")
    return GAN(G_ema, G, D, config=copy.deepcopy(gans[0].config))


def make_conditional(gan: GAN, class_names: Sequence[str], seed: int = 0) -> GAN:
    """An unconditional GAN turned class-conditional with ``len(class_names)`` classes whose
    G output and D logits are, for every class, those of ``gan`` (up to float rounding).

    Args:
        gan: an unconditional GAN with D.
        class_names: the classes (recorded as ``class_names``).
        seed: seed of the new parameters' random init.

    Raises:
        GanzooError: ``gan`` is conditional already, or has no D.
    """
    if gan.metadata.num_classes:
        raise GanzooError(f"merge: the root must be unconditional (it has {gan.metadata.num_classes} classes)")
    if gan.D is None:
        raise GanzooError("merge: the root has no discriminator (rooting trains D as well)")
    num = len(class_names)
    arch = gan.architecture
    arch.require("merge")
    G_ema = arch.conditional(gan.G_ema, "G_ema", num, seed)
    G = arch.conditional(gan.G, "G", num, seed) if gan.G is not None else None
    D = arch.conditional(gan.D, "D", num, seed)
    config = copy.deepcopy(gan.config)
    config["class_names"] = list(class_names)
    return GAN(G_ema, G, D, config=config)


# ----------------------------------------------------------------------------------------------
# EWC


def fisher_information(gan: GAN, num_samples: int = 256, batch: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of the GAN's own G and D under the BCE loss.

    The loss is ``softplus(-D(G(z)))`` (the non-saturating G loss, i.e. BCE with the source's
    own samples labeled real); the Fisher of each parameter is the mean over minibatches of
    its squared gradient.

    Returns:
        ``{"G.<name>": F, "D.<name>": F}`` for every parameter of the raw G (or G_ema) and D.
    """
    G = copy.deepcopy(gan.G if gan.G is not None else gan.G_ema).requires_grad_(True)
    meta = gan.metadata
    D = copy.deepcopy(gan.D).requires_grad_(True)
    params = {f"G.{k}": p for k, p in G.named_parameters()} | {f"D.{k}": p for k, p in D.named_parameters()}
    fisher = {k: torch.zeros_like(p) for k, p in params.items()}
    gen = torch.Generator().manual_seed(seed)
    rounds = max(num_samples // batch, 1)
    for _ in range(rounds):
        z = torch.randn([batch, meta.latent_dim], generator=gen)
        c = torch.zeros([batch, meta.num_classes])
        img = gan.architecture.generate(G, z, c, seeds=(), truncation_psi=1.0, truncation_cutoff=None, noise_mode="const")
        loss = torch.nn.functional.softplus(-D(img, c)).mean()
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for (key, _), grad in zip(params.items(), grads):
            if grad is not None:
                fisher[key] += grad.detach().square() / rounds
    return fisher


def _conditional_fisher(fisher: dict[str, torch.Tensor], uncond: GAN, cond: GAN) -> dict[str, torch.Tensor]:
    """The Fisher of the unconditional source mapped onto the conditional model's parameters:
    inherited entries keep theirs (rescaled where :func:`make_conditional` rescaled the weight),
    new entries get 0 (they are free to learn the classes), and so does D's output layer, which
    the projection head re-parameterizes."""
    G_old = uncond.G if uncond.G is not None else uncond.G_ema
    G_new = cond.G if cond.G is not None else cond.G_ema
    rescaled = {f"G.{name}": how for name, how in cond.architecture.rescaled_inputs(G_old, G_new).items()}
    out = {}
    for prefix, net in (("G", G_new), ("D", cond.D)):
        for key, param in net.named_parameters():
            name = f"{prefix}.{key}"
            value = torch.zeros_like(param)
            old = fisher.get(name)
            if old is not None and old.shape == param.shape:
                value = old.clone()
            elif name in rescaled and old is not None:
                columns, scale = rescaled[name]
                value[:, :columns] = old / scale**2
            out[name] = value
    return out


def write_ewc_anchor(path: Path, source: GAN, cond: GAN, num_samples: int, seed: int) -> Path:
    """Writes the EWC penalty file of :class:`~ganzoo.train.loss.AnchorPenalty`: the
    conditional model's starting weights (``anchor.G.*``, ``anchor.D.*``) and their Fisher
    (``fisher.G.*``, ``fisher.D.*``), atomically."""
    from safetensors.torch import save_file

    fisher = _conditional_fisher(fisher_information(source, num_samples=num_samples, seed=seed), source, cond)
    tensors = {}
    for prefix, net in (("G", cond.G if cond.G is not None else cond.G_ema), ("D", cond.D)):
        for key, param in net.named_parameters():
            tensors[f"anchor.{prefix}.{key}"] = param.detach().cpu().contiguous().clone()
            tensors[f"fisher.{prefix}.{key}"] = fisher[f"{prefix}.{key}"].contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
    return path
