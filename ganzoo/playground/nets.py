"""The toy study's generator and discriminator, as *stacks* of independent models.

One :class:`GeneratorStack` holds ``M`` generators with the paper's architecture and evaluates
them together: every linear layer is one batched matrix product over a weight tensor
``[M, out, in]``, and every BatchNorm normalises each model's activations with that model's own
batch statistics (and keeps that model's own running statistics). A stack of ``M`` models
computes exactly what ``M`` separate ``torch.nn`` networks compute — :meth:`to_modules` builds
those networks, and the tests compare the two — but in one pass, which is what makes the 100
finetunes of the paper's Figure 3 cheap on a CPU.

Architecture (Grigoryev et al., ICLR 2022, appendix; the authors' public playground code):

* G: 64-d latent → Linear 64 → 128 → 128 → 128 → 64, each followed by BatchNorm + ReLU → Linear 2.
* D: 2 → Linear 64 → 128 → 128 → 64, each followed by ReLU → Linear 1 (a logit; the paper's
  sigmoid is folded into the loss, see :mod:`ganzoo.playground.train`).

Parameters are initialised as ``torch.nn.Linear`` / ``BatchNorm1d`` initialise theirs (weights
and biases uniform in ±1/√fan_in; BatchNorm scale 1, shift 0), drawn from an explicit generator.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Z_DIM = 64                                  # Latent dimensionality of G.
G_HIDDEN = (64, 128, 128, 128, 64)          # Hidden widths of G (BatchNorm + ReLU after each).
D_HIDDEN = (64, 128, 128, 64)               # Hidden widths of D (ReLU after each).
DATA_DIM = 2                                # The samples are points in the plane.


class StackedLinear(nn.Module):
    """``M`` independent linear layers applied to ``M`` batches at once.

    Activations are *feature-major*, ``[M, features, B]``: each model's batch is a
    ``[features, B]`` matrix, the layer is one ``baddbmm`` with the weights ``[M, out, in]``
    (each model's weight is laid out like ``nn.Linear.weight``), and a following BatchNorm sees
    one contiguous row per (model, feature) — see :class:`StackedBatchNorm`.
    """

    def __init__(
        self,
        num_models: int,                    # Number of independent models M.
        in_features: int,                   # Input width.
        out_features: int,                  # Output width.
        generator: torch.Generator | None = None,  # Randomness for the initial weights.
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        bound = 1.0 / math.sqrt(in_features)  # What nn.Linear's default init amounts to.
        weight = torch.rand(num_models, out_features, in_features, generator=generator)
        bias = torch.rand(num_models, out_features, generator=generator)
        self.weight = nn.Parameter((2 * weight - 1) * bound)  # [M, out, in]
        self.bias = nn.Parameter((2 * bias - 1) * bound)      # [M, out]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [M, in, B] -> [M, out, B]
        return torch.baddbmm(self.bias.unsqueeze(-1), self.weight, x)

    def extra_repr(self) -> str:
        return f"num_models={self.weight.shape[0]}, in_features={self.in_features}, out_features={self.out_features}"


class StackedBatchNorm(nn.Module):
    """``M`` independent ``BatchNorm1d`` layers: batch statistics are taken per model.

    Matches ``torch.nn.BatchNorm1d`` (eps 1e-5, momentum 0.1, biased variance to normalise,
    unbiased variance in the running estimate) model by model. The feature-major activations
    ``[M, F, B]`` are viewed as one sample of ``M·F`` channels of length ``B``, so a single
    ``batch_norm`` call normalises every (model, feature) row over that model's batch and
    updates that model's running statistics in place.
    """

    def __init__(self, num_models: int, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_models, num_features))   # [M, F]
        self.bias = nn.Parameter(torch.zeros(num_models, num_features))    # [M, F]
        self.register_buffer("running_mean", torch.zeros(num_models, num_features))
        self.register_buffer("running_var", torch.ones(num_models, num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [M, F, B] -> [M, F, B]
        num_models, features, batch = x.shape
        y = F.batch_norm(
            x.reshape(1, num_models * features, batch),
            self.running_mean.view(-1),  # views: the running statistics are updated in place
            self.running_var.view(-1),
            self.weight.reshape(-1),
            self.bias.reshape(-1),
            training=self.training,
            momentum=self.momentum,
            eps=self.eps,
        )
        return y.view(num_models, features, batch)

    def extra_repr(self) -> str:
        return f"num_models={self.weight.shape[0]}, num_features={self.num_features}"


class _Stack(nn.Module):
    """What both stacks share: the model count and moving models between stacks."""

    init_kwargs: dict

    @property
    def num_models(self) -> int:
        """Number of independent models in the stack."""
        return self.init_kwargs["num_models"]

    def model_state(self, index: int) -> dict[str, torch.Tensor]:
        """Returns a copy of model ``index``'s parameters and buffers (leading dim 1)."""
        return {k: v[index : index + 1].detach().clone() for k, v in self.state_dict().items()}

    @classmethod
    def from_model_states(cls, states: Sequence[dict[str, torch.Tensor]], **kwargs) -> "_Stack":
        """Builds a stack whose model ``i`` is ``states[i]`` (each from :meth:`model_state`).

        Args:
            states: per-model state dicts with a leading model dimension of 1 (or more).
            **kwargs: further constructor arguments (not ``num_models``).

        Returns:
            A new stack in training mode.
        """
        merged = {k: torch.cat([s[k] for s in states]) for k in states[0]}
        num_models = next(iter(merged.values())).shape[0]
        stack = cls(num_models=num_models, generator=torch.Generator().manual_seed(0), **kwargs)
        stack.load_state_dict(merged, strict=True)
        return stack


class GeneratorStack(_Stack):
    """``M`` independent generators: ``z [M, B, 64]`` → points ``[M, B, 2]``."""

    def __init__(
        self,
        num_models: int = 1,                 # Number of independent generators M.
        z_dim: int = Z_DIM,                  # Latent dimensionality.
        hidden: Iterable[int] = G_HIDDEN,    # Hidden widths, each followed by BatchNorm + ReLU.
        generator: torch.Generator | None = None,  # Randomness for the initial weights.
    ) -> None:
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        self.init_kwargs = dict(num_models=num_models, z_dim=z_dim, hidden=hidden)
        widths = (z_dim, *hidden)
        self.fcs = nn.ModuleList(
            StackedLinear(num_models, i, o, generator) for i, o in zip(widths[:-1], widths[1:])
        )
        self.bns = nn.ModuleList(StackedBatchNorm(num_models, o) for o in hidden)
        self.out = StackedLinear(num_models, widths[-1], DATA_DIM, generator)

    @property
    def z_dim(self) -> int:
        """Latent dimensionality."""
        return self.init_kwargs["z_dim"]

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [M, B, z_dim] -> [M, B, 2]
        x = z.transpose(1, 2)                                 # [M, z_dim, B]
        for fc, bn in zip(self.fcs, self.bns):
            x = torch.relu(bn(fc(x)))                         # [M, F, B]
        return self.out(x).transpose(1, 2)

    def to_modules(self) -> list[nn.Sequential]:
        """Returns the ``M`` generators as plain ``torch.nn`` networks (the authors' layout:
        ``Linear, BatchNorm1d, ReLU, …, Linear``), with the same weights and running statistics
        and the same train/eval mode."""
        nets = []
        for m in range(self.num_models):
            layers: list[nn.Module] = []
            for fc, bn in zip(self.fcs, self.bns):
                layers += [_linear_module(fc, m), _batchnorm_module(bn, m), nn.ReLU()]
            layers.append(_linear_module(self.out, m))
            nets.append(nn.Sequential(*layers).train(self.training))
        return nets


class DiscriminatorStack(_Stack):
    """``M`` independent discriminators: points ``[M, B, 2]`` → logits ``[M, B]``."""

    def __init__(
        self,
        num_models: int = 1,                 # Number of independent discriminators M.
        hidden: Iterable[int] = D_HIDDEN,    # Hidden widths, each followed by ReLU.
        generator: torch.Generator | None = None,  # Randomness for the initial weights.
    ) -> None:
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        self.init_kwargs = dict(num_models=num_models, hidden=hidden)
        widths = (DATA_DIM, *hidden)
        self.fcs = nn.ModuleList(
            StackedLinear(num_models, i, o, generator) for i, o in zip(widths[:-1], widths[1:])
        )
        self.out = StackedLinear(num_models, widths[-1], 1, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [M, B, 2] -> [M, B] logits
        x = x.transpose(1, 2)                                 # [M, 2, B]
        for fc in self.fcs:
            x = torch.relu(fc(x))                             # [M, F, B]
        return self.out(x).squeeze(1)

    def to_modules(self) -> list[nn.Sequential]:
        """Returns the ``M`` discriminators as plain ``torch.nn`` networks producing logits
        (``Linear, ReLU, …, Linear``) with the same weights."""
        nets = []
        for m in range(self.num_models):
            layers: list[nn.Module] = []
            for fc in self.fcs:
                layers += [_linear_module(fc, m), nn.ReLU()]
            layers.append(_linear_module(self.out, m))
            nets.append(nn.Sequential(*layers))
        return nets


def _linear_module(layer: StackedLinear, m: int) -> nn.Linear:
    linear = nn.Linear(layer.in_features, layer.out_features)
    with torch.no_grad():
        linear.weight.copy_(layer.weight[m])
        linear.bias.copy_(layer.bias[m])
    return linear


def _batchnorm_module(layer: StackedBatchNorm, m: int) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(layer.num_features, eps=layer.eps, momentum=layer.momentum)
    with torch.no_grad():
        bn.weight.copy_(layer.weight[m])
        bn.bias.copy_(layer.bias[m])
        bn.running_mean.copy_(layer.running_mean[m])
        bn.running_var.copy_(layer.running_var[m])
    return bn
