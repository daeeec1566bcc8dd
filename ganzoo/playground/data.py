"""The three 2-D distributions of the toy study (Grigoryev et al., ICLR 2022, §2.2).

* **target**: 10 Gaussians, σ = 0.25, centres evenly spaced on the circle of radius 20;
* **Source-I**: a wide ring — a uniform angle on the zero-centred circle of radius 20, displaced
  along the radius by Gaussian noise σ = 4 (high coverage of the target, low precision);
* **Source-II**: 3 Gaussians, σ = 0.5, sharing their centres with 3 consecutive target Gaussians
  (high precision, low coverage).

Every sampler draws from an explicit :class:`torch.Generator`, so a study is reproducible from
its seed alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import torch

TARGET_RADIUS = 20.0        # Radius of the circle the target centres lie on.
TARGET_NUM_MODES = 10       # Number of target Gaussians.
TARGET_SIGMA = 0.25         # Standard deviation of each target Gaussian.
SOURCE_ONE_SIGMA = 4.0      # Radial spread of the Source-I ring.
SOURCE_TWO_NUM_MODES = 3    # Source-II keeps this many consecutive target centres...
SOURCE_TWO_SIGMA = 0.5      # ...with this standard deviation.


def circle_centers(num_modes: int = TARGET_NUM_MODES, radius: float = TARGET_RADIUS) -> torch.Tensor:
    """Returns ``num_modes`` points evenly spaced on a zero-centred circle, the first at angle 0.

    Args:
        num_modes: how many centres.
        radius: radius of the circle.

    Returns:
        float32 tensor ``[num_modes, 2]``.
    """
    angles = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


@dataclass(frozen=True)
class GaussianMixture:
    """Equal-weight mixture of isotropic Gaussians.

    Attributes:
        centers: ``[K, 2]`` mode centres.
        sigma: standard deviation shared by all modes.
        name: label used in reports and plots.
    """

    centers: torch.Tensor
    sigma: float
    name: str = "mixture"

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draws ``n`` points: a uniformly chosen mode plus ``sigma``-scaled Gaussian noise.

        Args:
            n: number of points.
            generator: source of randomness.

        Returns:
            float32 tensor ``[n, 2]``.
        """
        modes = torch.randint(len(self.centers), (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator)
        return self.centers[modes] + self.sigma * noise


@dataclass(frozen=True)
class Ring:
    """A ring: a uniform angle on a circle, displaced along the radius by Gaussian noise.

    Attributes:
        radius: radius of the zero-centred circle.
        sigma: standard deviation of the radial displacement.
        name: label used in reports and plots.
    """

    radius: float
    sigma: float
    name: str = "ring"

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draws ``n`` points of the ring.

        Args:
            n: number of points.
            generator: source of randomness.

        Returns:
            float32 tensor ``[n, 2]``.
        """
        angle = 2 * math.pi * torch.rand(n, generator=generator)
        radius = self.radius + self.sigma * torch.randn(n, generator=generator)
        return radius[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1)


Distribution = Union[GaussianMixture, Ring]


def target_distribution() -> GaussianMixture:
    """The target: 10 Gaussians (σ = 0.25) on the circle of radius 20."""
    return GaussianMixture(circle_centers(), TARGET_SIGMA, name="target")


def source_one() -> Ring:
    """Source-I: the wide ring around the target (radius 20, radial σ = 4)."""
    return Ring(TARGET_RADIUS, SOURCE_ONE_SIGMA, name="Source-I")


def source_two() -> GaussianMixture:
    """Source-II: 3 Gaussians (σ = 0.5) on the centres of 3 consecutive target Gaussians."""
    return GaussianMixture(circle_centers()[:SOURCE_TWO_NUM_MODES], SOURCE_TWO_SIGMA, name="Source-II")


def sample_per_model(distributions: Sequence[Distribution], n: int, generator: torch.Generator) -> torch.Tensor:
    """Draws an independent batch of ``n`` points for each model of a stack.

    Models that share one distribution object are served by a single call (one draw of
    ``len * n`` points, then split), which keeps 100 finetunes on the same target cheap.

    Args:
        distributions: one distribution per model.
        n: points per model.
        generator: source of randomness.

    Returns:
        float32 tensor ``[M, n, 2]``.
    """
    first = distributions[0]
    if all(d is first for d in distributions):
        return first.sample(len(distributions) * n, generator).view(len(distributions), n, 2)
    return torch.stack([d.sample(n, generator) for d in distributions])
