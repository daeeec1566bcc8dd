"""The StyleGAN2 objective: non-saturating logistic loss, lazy R1 and path-length regularization,
style mixing, with ADA applied to every image D sees.

With one chunk per minibatch this is the published algorithm exactly: Karras et al. 2020
(StyleGAN2-ADA), with the formulas of StyleGAN2 (Karras et al. 2020b). How the loop drives it:
:mod:`ganzoo.train.loss`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ganzoo import ops
from ganzoo.train.augment import AugmentPipe
from ganzoo.train.loss import ChunkStats, update_w_avg
from ganzoo.errors import GanzooError

class StyleGAN2Loss:
    """Losses and regularizers of StyleGAN2-ADA.

    Args:
        G: the generator being trained (train mode).
        D: the discriminator being trained (train mode).
        augment_pipe: applied to every image D sees, or None.
        r1_gamma: R1 weight γ (penalty ``γ/2 · ||∇D(x)||²`` on reals).
        style_mixing_prob: probability of mixing two latents in a minibatch.
        pl_weight: path-length regularization weight (0 = off).
        pl_batch_shrink: the path-length pass uses ``chunk // pl_batch_shrink`` samples.
        pl_decay: decay of the running mean path length.
        penalty: ``penalty(name, network) -> scalar`` added to the main loss of ``G`` (name
            ``'G'``) and ``D`` (``'D'``), e.g. :class:`AnchorPenalty`; None = none.
        noise_mode: the synthesis network's per-layer noise in every phase: ``'random'`` (as in
            training), or ``'const'``/``'none'`` to make the objective deterministic (tests
            pinning it to reference gradients).
        pl_noise: ``pl_noise(img) -> tensor`` of ``img``'s shape, the standard-normal draw of
            the path-length regularizer's random image-space direction (it is divided by
            ``sqrt(H·W)`` here); None = ``torch.randn_like`` (training). A seam for tests that
            replay a reference's draw.
        blur_sigma: σ of a Gaussian blur of every image D sees (before augmentation), fading
            out linearly to none over the first ``blur_fade_kimg`` thousand images (StyleGAN3-R
            trains with σ = 10 fading over ``batch·200/32`` kimg); 0 = no blur.
        blur_fade_kimg: see ``blur_sigma``.
    """

    #: The loop runs these (each when due); lazy R1 and path length are phases of their own.
    phases = ("Gmain", "Greg", "Dmain", "Dreg")

    def __init__(
        self,
        G: torch.nn.Module,
        D: torch.nn.Module,
        augment_pipe: AugmentPipe | None = None,
        r1_gamma: float = 10.0,
        style_mixing_prob: float = 0.9,
        pl_weight: float = 2.0,
        pl_batch_shrink: int = 2,
        pl_decay: float = 0.01,
        penalty: Callable[[str, torch.nn.Module], torch.Tensor] | None = None,
        noise_mode: str = "random",
        pl_noise: Callable[[torch.Tensor], torch.Tensor] | None = None,
        blur_sigma: float = 0.0,
        blur_fade_kimg: float = 0.0,
    ):
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', not {noise_mode!r}")
        self.G = G
        self.D = D
        self.augment_pipe = augment_pipe
        self.r1_gamma = float(r1_gamma)
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)
        self.pl_mean = torch.zeros([], device=next(G.parameters()).device)
        self.penalty = penalty
        self.noise_mode = noise_mode
        self.pl_noise = pl_noise if pl_noise is not None else torch.randn_like
        self.blur_sigma = float(blur_sigma)
        self.blur_fade_kimg = float(blur_fade_kimg)
        self.cur_nimg = 0  # set by the loop before each minibatch (the blur's fade-out)

    @torch.no_grad()
    def update_running(self, phase: str, sums: dict[str, torch.Tensor], counts: dict[str, float]) -> dict[str, float]:
        """One phase's totals: ``w`` (sum of the mapping outputs) moves ``w_avg``; ``pl_length``
        (sum of the chunks' mean path lengths, counted per chunk) moves ``pl_mean``."""
        logged = {}
        if "w" in sums:
            self.update_w_avg(sums["w"], counts["w"])  # the whole phase's mean latent code
        if "pl_length" in sums:
            self.update_pl_mean(sums["pl_length"][0] / counts["pl_length"])
            logged["pl_mean"] = float(self.pl_mean)
        return logged

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"pl_mean": self.pl_mean.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if "pl_mean" in state:
            self.pl_mean.copy_(state["pl_mean"].reshape([]).to(self.pl_mean.device))

    @torch.no_grad()
    def update_pl_mean(self, mean_length: torch.Tensor | float) -> None:
        """Moves the running mean path length towards one phase's mean path length (the mean
        over chunks and processes of the chunks' mean lengths):
        ``pl_mean ← lerp(pl_mean, mean_length, pl_decay)``."""
        target = torch.as_tensor(mean_length, dtype=self.pl_mean.dtype, device=self.pl_mean.device)
        self.pl_mean.copy_(self.pl_mean.lerp(target.reshape([]), self.pl_decay))

    @torch.no_grad()
    def update_w_avg(self, w_sum: torch.Tensor, w_count: float) -> None:
        """The mapping network's running mean of w, as ``G.mapping(update_emas=True)`` moves it on
        a batch, from the whole phase's sum."""
        update_w_avg(self.G.mapping, w_sum, w_count)

    def _with_penalty(self, loss: torch.Tensor, name: str) -> torch.Tensor:
        if self.penalty is None:
            return loss
        return loss + self.penalty(name, self.G if name == "G" else self.D)

    # ------------------------------------------------------------------------------------------

    def after_phase(self, phase: str, dist: object) -> None:
        """Nothing to agree on: StyleGAN2's running statistics are applied by the loop."""

    def synthesize(self, ws: torch.Tensor, update_emas: bool) -> torch.Tensor:
        """Images from style codes; ``update_emas`` marks the pass that may update running
        statistics of the synthesis network (StyleGAN2's has none)."""
        return self.G.synthesis(ws, noise_mode=self.noise_mode)

    def current_blur(self) -> float:
        """σ of the blur at ``cur_nimg`` images."""
        if self.blur_sigma <= 0 or self.blur_fade_kimg <= 0:
            return 0.0
        return max(1 - self.cur_nimg / (self.blur_fade_kimg * 1e3), 0.0) * self.blur_sigma

    def d_input(self, img: torch.Tensor) -> torch.Tensor:
        """What D sees of an image before augmentation: the image, blurred while the blur lasts.

        The kernel is ``2^(-(x/σ)²)`` over ``|x| ≤ ⌊3σ⌋`` (a Gaussian of standard deviation
        ``σ/√(2 ln 2)``), normalized, applied in x and y with zero padding that keeps the size."""
        sigma = self.current_blur()
        reach = int(math.floor(sigma * 3))
        if reach <= 0:
            return img
        taps = torch.arange(-reach, reach + 1, device=img.device, dtype=torch.float32).div(sigma).square().neg().exp2()
        taps = taps / taps.sum()
        return ops.upfirdn2d(img, torch.outer(taps, taps), padding=reach)

    def run_G(self, z: torch.Tensor, c: torch.Tensor, gen: torch.Generator,
              update_emas: bool = False) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Generates images and returns ``(img, ws)``; mixes styles with ``style_mixing_prob``."""
        ws = self.G.mapping(z, c)  # w_avg is updated by the loop, once per phase
        # Always draw the same random numbers, so the stream does not depend on the outcome.
        cutoff = int(torch.randint(1, max(ws.shape[1], 2), [], generator=gen))
        mix = float(torch.rand([], generator=gen)) < self.style_mixing_prob
        z2 = torch.randn(z.shape, generator=gen).to(z.device)
        if mix and self.style_mixing_prob > 0 and ws.shape[1] > 1:
            ws2 = self.G.mapping(z2, c)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return self.synthesize(ws, update_emas), ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Discriminator logits of (augmented) images."""
        img = self.d_input(img)
        if self.augment_pipe is not None:
            img = self.augment_pipe(img, generator=gen)
        return self.D(img, c)

    # ------------------------------------------------------------------------------------------

    def accumulate(
        self,
        phase: str,
        real_img: torch.Tensor,
        real_c: torch.Tensor,
        gen_z: torch.Tensor,
        gen_c: torch.Tensor,
        gain: float,
        gen: torch.Generator,
    ) -> ChunkStats:
        """Runs one phase on one chunk and backpropagates ``gain`` × its loss.

        Args:
            phase: ``'Gmain'``, ``'Greg'``, ``'Dmain'`` or ``'Dreg'``.
            real_img: float reals in [-1, 1] (D phases).
            real_c: their labels ``[n, c_dim]``.
            gen_z: latents ``[n, z_dim]`` (G and Dmain phases).
            gen_c: labels for the generated images.
            gain: the loss scale: the phase's interval (lazy regularization) divided by the
                number of chunks in the whole minibatch.
            gen: CPU generator for every random choice of this chunk (style mixing, ADA).

        Returns:
            The chunk's statistics for the loop to reduce.
        """
        stats = ChunkStats()
        if phase == "Gmain":
            img, ws = self.run_G(gen_z, gen_c, gen)
            logits = self.run_D(img, gen_c, gen)
            loss = F.softplus(-logits)
            self._with_penalty(loss.mean(), "G").mul(gain).backward()
            stats.loss_sum, stats.loss_count = float(loss.detach().sum()), loss.numel()
            stats.sums["w"], stats.counts["w"] = ws[:, 0].detach().sum(dim=0), ws.shape[0]
        elif phase == "Greg":
            batch = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            img, ws = self.run_G(gen_z[:batch], gen_c[:batch], gen)
            pl_noise = self.pl_noise(img) / math.sqrt(img.shape[2] * img.shape[3])
            (pl_grads,) = torch.autograd.grad(outputs=[(img * pl_noise).sum()], inputs=[ws], create_graph=True)
            pl_lengths = pl_grads.square().sum(dim=2).mean(dim=1).sqrt()
            # The penalty is measured against the mean updated with this chunk, as published.
            pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
            penalty = (pl_lengths - pl_mean).square()
            loss = penalty * self.pl_weight
            loss.mean().mul(gain).backward()
            stats.loss_sum, stats.loss_count = float(penalty.detach().sum()), penalty.numel()
            stats.sums["pl_length"], stats.counts["pl_length"] = pl_lengths.detach().mean(), 1
            stats.sums["w"], stats.counts["w"] = ws[:, 0].detach().sum(dim=0), ws.shape[0]
        elif phase == "Dmain":
            with torch.no_grad():
                img, ws = self.run_G(gen_z, gen_c, gen, update_emas=True)
            logits_fake = self.run_D(img, gen_c, gen)
            loss_fake = F.softplus(logits_fake)
            self._with_penalty(loss_fake.mean(), "D").mul(gain).backward()
            logits_real = self.run_D(real_img, real_c, gen)
            loss_real = F.softplus(-logits_real)
            loss_real.mean().mul(gain).backward()
            stats.loss_sum = float(loss_fake.detach().sum() + loss_real.detach().sum())
            stats.loss_count = loss_real.numel()
            stats.sums["w"], stats.counts["w"] = ws[:, 0].sum(dim=0), ws.shape[0]
            stats.real_logits = logits_real.detach()
        elif phase == "Dreg":
            real = real_img.detach().requires_grad_(True)
            logits = self.run_D(real, real_c, gen)
            (r1_grads,) = torch.autograd.grad(outputs=[logits.sum()], inputs=[real], create_graph=True)
            penalty = r1_grads.square().sum(dim=[1, 2, 3])
            loss = penalty * (self.r1_gamma / 2)
            loss.mean().mul(gain).backward()
            stats.loss_sum, stats.loss_count = float(penalty.detach().sum()), penalty.numel()
            stats.real_logits = logits.detach()  # ADA's r_t counts these too, as the reference's does
        else:
            raise GanzooError(f"StyleGAN2's objective has no phase {phase!r} (its phases: {', '.join(self.phases)})")
        return stats
