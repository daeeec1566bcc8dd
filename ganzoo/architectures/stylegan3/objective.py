"""The StyleGAN3 objective: StyleGAN2-ADA's losses as the StyleGAN3 paper trains its configs T and R.

The same non-saturating loss and lazy R1 as :class:`~ganzoo.architectures.stylegan2.objective.StyleGAN2Loss`,
with what the paper changes (Karras et al. 2021, appendix on training): no path-length
regularization and no style mixing (set by :meth:`StyleGAN3.training_defaults`), a Gaussian blur
of every image D sees that fades out early in training (config R), and the synthesis layers'
running input magnitudes (``magnitude_ema``) updated by the generator pass of D's phase.
"""

from __future__ import annotations

from typing import Any

import torch

from ganzoo.architectures.stylegan2.objective import StyleGAN2Loss


class StyleGAN3Loss(StyleGAN2Loss):
    """:class:`StyleGAN2Loss` driving a StyleGAN3 generator."""

    def synthesize(self, ws: torch.Tensor, update_emas: bool) -> torch.Tensor:
        return self.G.synthesis(ws, update_emas=update_emas)

    @torch.no_grad()
    def after_phase(self, phase: str, dist: Any) -> None:
        """After D's phase each process has moved its layers' ``magnitude_ema`` with its own
        chunks: all processes take their mean, so they keep one generator."""
        if phase != "Dmain" or not getattr(dist, "active", False):
            return
        emas = [buf for name, buf in self.G.named_buffers() if name.endswith("magnitude_ema")]
        if emas:
            mean = dist.sum_(torch.stack([e.to(torch.float32) for e in emas])) / dist.world
            for buf, value in zip(emas, mean):
                buf.copy_(value)
