"""The StyleGAN2-ADA training loop: phases, lazy regularization, G EMA, ADA, chunks and processes.

One minibatch (``batch`` images, over all processes) runs the phases ``Gmain`` (every step),
``Greg`` (every ``G_reg_interval`` = 4), ``Dmain`` (every step), ``Dreg`` (every
``D_reg_interval`` = 16), each with one Adam step of the phase's network; then the G EMA update,
then the ADA adjustment. Adam runs with β = (0, 0.99) and, since a regularized network takes
``k+1`` steps every ``k`` minibatches, with the published lazy-regularization correction
``lr·k/(k+1)``, ``β^(k/(k+1))``.

A minibatch is split into chunks of ``batch_gpu`` images (gradient accumulation) spread over the
processes (DDP). Each chunk's random numbers come from a seed derived from
``(seed, minibatch, phase, chunk)``, so a chunk computes the same thing whichever process runs
it, and the run is a pure function of its settings: the same seed gives the same bytes on CPU,
an interrupted and resumed run gives the bytes of the uninterrupted one, and two processes give
what one process with two chunks gives (up to float summation order).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

import numpy as np
import torch

from ganzoo._malloc import keep_freed_memory
from ganzoo.architectures import architecture_of, get_architecture
from ganzoo.errors import DatasetError, GanzooError
from ganzoo.train.augment import AdaptiveP, AugmentPipe
from ganzoo.train.dataset import ProceduralImages, TrainingImages
from ganzoo.train.loss import PHASES, AnchorPenalty, ChunkStats, Objective

# `compile=None` compiles StyleGAN2 runs on CPU at COMPILE_MIN_RESOLUTION or more that are longer
# than COMPILE_MIN_KIMG thousand images. Compiling G and D costs 0.5-2 min of a CPU core with a
# cold inductor cache and seconds with a warm one (the on-disk cache persists across runs).
# Measured on a 2-core machine (scripts/bench_compile.py): at 32x32 (batch 16) compiled training
# runs at 1.24-1.39x the eager img/s (1 and 2 threads), so a cold compilation (35-40 s) is repaid
# after about 10 kimg; at 256x256 a compiled G forward takes 0.75-0.85x and the Gmain + Dmain
# phases 0.82-0.94x of the eager time (README, Benchmarks). Shorter runs (smoke runs, tests, the
# default of 100 kimg itself) stay on the eager reference path.
COMPILE_MIN_KIMG = 100.0
COMPILE_MIN_RESOLUTION = 32


#: :class:`TrainingOptions` fields that only some families' objectives read (off at their default,
#: 0); :func:`ganzoo.train.checks.check_family_options` refuses them set for any other family.
FAMILY_OPTIONS = ("G_ortho",)


@dataclass
class TrainingOptions:
    """Every setting that determines a training run (recorded in snapshots and the lineage).

    Attributes:
        batch: images per minibatch, over all processes.
        batch_gpu: images per chunk (per process and accumulation round); None = ``batch / world``.
        seed: the seed every random choice derives from.
        total_kimg: train until this many thousand images have been shown to D.
        lr_G, lr_D: Adam learning rates (before the lazy-regularization correction).
        betas: Adam betas (before the correction).
        adam_eps: Adam's epsilon (1e-8; BigGAN's release trains with 1e-6).
        The defaults are family-neutral (no regularization, no style mixing): a family's
        :meth:`~ganzoo.architectures.Architecture.training_defaults` supplies its own schedule
        (StyleGAN2-ADA's lazy R1 and path length, GAN_stability's R1, ...), and
        :meth:`for_architecture` builds options with them.

        r1_gamma: R1 weight (0: none); None = the heuristic ``0.0002 · res² / batch``
            (StyleGAN2-ADA's 'auto').
        G_reg_interval, D_reg_interval: lazy regularization intervals; ``G_reg_interval``
            None: G has no regularization phase (``pl_weight`` must be 0), as in StyleGAN3;
            ``D_reg_interval`` None: no separate R1 phase, the objective adds R1 to D's main
            loss every minibatch (GAN_stability's training).
        pl_weight, pl_batch_shrink, pl_decay: path-length regularization (0: none).
        style_mixing_prob: probability of style mixing (0: none).
        blur_sigma, blur_fade_kimg: the blur of D's inputs that fades out (StyleGAN3-R); 0 = none.
        ema_kimg: half-life of the G EMA in thousands of images; None = ``batch · 10 / 32``.
        ema_rampup: the half-life is at most ``ema_rampup`` × images so far (None = no ramp-up).
        ema_beta: a fixed EMA decay per minibatch instead of the half-life (GAN_stability's 0.999,
            BigGAN's 0.9999); None = from ``ema_kimg``.
        ema_start_kimg: G_ema copies G until this many thousand images (BigGAN's EMA start).
        aug: ``'ada'``, ``'fixed'`` or ``'none'``.
        aug_preset: augmentation preset (``'bgc'``, ``'bgcfnc'``, ...).
        aug_p: initial (``ada``) or fixed (``fixed``) augmentation probability.
        ada_target, ada_interval, ada_kimg: the ADA controller.
        penalty_file: a safetensors file of :class:`~ganzoo.train.loss.AnchorPenalty` tensors
            whose penalty is added to the G and D main losses (EWC); None = no penalty.
        penalty_weight: the penalty's λ.
        allow_tf32: let CUDA use TF32 in convolutions and matrix products (faster, ~1e-3
            relative error). Off by default, as in StyleGAN2-ADA's training loop; the flags are
            torch-global and set when a Trainer is made on CUDA.
        G_ortho: strength of BigGAN's orthogonal regularization of G (BigGAN-PyTorch's
            ``--G_ortho``; the paper used 1e-4); 0 = off. A family's own option
            (:data:`FAMILY_OPTIONS`): only families that list it in
            :attr:`~ganzoo.architectures.Architecture.objective_options` train with it set.
        compile: run G's mapping and synthesis networks and D through ``torch.compile``
            (inductor, :mod:`ganzoo.compile`) in the phases that differentiate once (``Gmain``,
            ``Dmain``; the R1 and path-length phases stay eager). None = automatic: on for
            StyleGAN2 runs on CPU at :data:`COMPILE_MIN_RESOLUTION` (32) or more and longer
            than :data:`COMPILE_MIN_KIMG` (100) thousand images (where the one-time compilation
            is repaid), off otherwise. The Trainer replaces None by what
            it decided (False also where compiling is unavailable), so snapshots and ``run.json``
            record it and a resumed run computes the same way. Compiled and eager runs agree to
            float rounding (about 1e-5 per step), not bit for bit.
    """

    batch: int = 32
    batch_gpu: int | None = None
    seed: int = 0
    total_kimg: float = 100.0
    lr_G: float = 0.0025
    lr_D: float = 0.0025
    betas: tuple[float, float] = (0.0, 0.99)
    adam_eps: float = 1e-8
    r1_gamma: float | None = 0.0
    G_reg_interval: int | None = None
    D_reg_interval: int | None = None
    pl_weight: float = 0.0
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing_prob: float = 0.0
    blur_sigma: float = 0.0
    blur_fade_kimg: float = 0.0
    ema_kimg: float | None = None
    ema_rampup: float | None = 0.05
    ema_beta: float | None = None
    ema_start_kimg: float = 0.0
    aug: str = "ada"
    aug_preset: str = "bgc"
    aug_p: float = 0.0
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 500.0
    penalty_file: str | None = None
    penalty_weight: float = 0.0
    allow_tf32: bool = False
    G_ortho: float = 0.0
    compile: bool | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def for_architecture(cls, architecture: Any, generator_kwargs: dict, batch: int, recipe: str | None = None,
                         **options: Any) -> "TrainingOptions":  # fmt: skip
        """Options with ``architecture``'s :meth:`~ganzoo.architectures.Architecture.training_defaults`
        for a generator built from ``generator_kwargs``, then ``options`` (which win)."""
        values = {**architecture.training_defaults(generator_kwargs, batch, recipe), **options, "batch": batch}
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainingOptions":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        # A record from before the compiled path ran eagerly: resuming it stays eager.
        known.setdefault("compile", False)
        if "betas" in known:
            known["betas"] = tuple(known["betas"])
        return cls(**known)


def _lazy_intervals(options: TrainingOptions, r1_gamma: float) -> dict[str, int | None]:
    """The interval of each lazy regularization phase, or None where the options ask for none
    (no weight, or no separate phase)."""
    return {"Greg": options.G_reg_interval if options.pl_weight != 0 and options.G_reg_interval else None,
            "Dreg": options.D_reg_interval if r1_gamma != 0 and options.D_reg_interval else None}  # fmt: skip


def _check_phases(family: str, objective: Any, options: TrainingOptions, r1_gamma: float) -> tuple[str, ...]:
    """The phases ``objective`` declares (all of :data:`PHASES` when it declares none); refuses,
    in one line, options that ask for a regularization phase it does not have."""
    phases = tuple(getattr(objective, "phases", PHASES))
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        raise GanzooError(f"{family}: the objective declares unknown phases {', '.join(unknown)} (phases: {', '.join(PHASES)})")
    options_of = {"Greg": "pl_weight", "Dreg": "r1_gamma"}
    for phase, interval in _lazy_intervals(options, r1_gamma).items():
        option = options_of[phase]
        if interval and phase not in phases:
            raise GanzooError(f"{family}: its objective has no {phase} phase (phases: {', '.join(phases)}); "
                              f"{option} needs one: set it to 0 or leave the family's default")  # fmt: skip
    return phases


def fill_unreached_grads(params: Iterable[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    """Gives a zero gradient to every parameter a phase's loss did not reach; returns them all.

    As in StyleGAN2-ADA, every parameter of the phase's network takes the phase's Adam step, a
    zero-gradient one where the loss does not depend on it (the ToRGB biases in ``Greg``, D's
    output bias in ``Dreg``): Adam then still decays its second moment and counts the step,
    which it skips for a ``None`` gradient.
    """
    params = list(params)
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    return params


class Distributed:
    """This process's place among the training processes; a no-op for one process."""

    def __init__(self) -> None:
        import torch.distributed as dist

        self.active = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.active else 0
        self.world = dist.get_world_size() if self.active else 1

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sums ``tensor`` over processes, in place."""
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def sum_floats(self, values: list[float]) -> list[float]:
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        return self.sum_(t).tolist()

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()


def own_memory(net: torch.nn.Module) -> None:
    """Gives each of ``net``'s tensors memory of its own, in place (same modules and Parameter
    objects). A network read from a checkpoint holds views into one mapping of the file; networks
    that compute directly on their stored tensors (BigGAN's power iteration, plain convolutions)
    then gave a resumed run (networks read from its snapshot) other last bits than the
    uninterrupted one (networks in fresh memory), most likely because CPU BLAS kernels depend
    on the memory's alignment. The trainer owns its networks' memory, so both are the same."""
    for module in net.modules():
        for param in module._parameters.values():
            if param is not None:
                param.data = param.data.clone()
        for name, buffer in list(module._buffers.items()):
            if buffer is not None:
                module._buffers[name] = buffer.clone()


def chunk_seed(seed: int, batch_idx: int, phase_idx: int, chunk_idx: int) -> int:
    """The seed of one chunk of one phase of one minibatch."""
    return int(np.random.SeedSequence([seed, batch_idx, phase_idx, chunk_idx]).generate_state(1, np.uint64)[0] >> 1)


def _images_to_float(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images.to(device=device, dtype=torch.float32) / 127.5 - 1


def _anchor_penalty(options: TrainingOptions, device: torch.device) -> AnchorPenalty | None:
    if options.penalty_file is None:
        return None
    from safetensors.torch import load_file

    try:
        tensors = load_file(options.penalty_file, device=str(device))
    except (OSError, ValueError) as exc:
        raise GanzooError(f"penalty file {options.penalty_file}: {exc}") from None
    return AnchorPenalty(tensors, options.penalty_weight)


class Trainer:
    """Trains ``G``/``D`` (and ``G_ema``) on ``data`` with their architecture's objective
    (:meth:`~ganzoo.architectures.Architecture.objective`) in StyleGAN2-ADA's loop.

    Args:
        G: generator to train (its trainable parameters are the ones Adam updates).
        G_ema: the EMA copy of ``G``.
        D: discriminator (frozen layers are buffers and stay as they are).
        data: the training images.
        options: the settings.
        device: where to train.

    Attributes:
        cur_nimg: images shown to D so far.
        batch_idx: minibatches done so far.
        ada: the adaptive-p controller (``None`` unless ``aug == 'ada'``).
        augment_pipe: the augmentation pipeline, or None for ``aug == 'none'``.
        last_stats: the statistics of the latest minibatch.
    """

    def __init__(
        self,
        G: torch.nn.Module,
        G_ema: torch.nn.Module,
        D: torch.nn.Module,
        data: TrainingImages | ProceduralImages,
        options: TrainingOptions,
        device: str | torch.device = "cpu",
    ):
        self.dist = Distributed()
        self.device = torch.device(device)
        self.options = options
        self.data = data
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = options.allow_tf32
            torch.backends.cudnn.allow_tf32 = options.allow_tf32
        for net in (G, G_ema, D):
            own_memory(net)
        self.G = G.to(self.device).train()
        self.G_ema = G_ema.to(self.device).eval()
        self.D = D.to(self.device).train()
        for net in (self.G, self.G_ema, self.D):
            net.requires_grad_(False)
        self.architecture = get_architecture(architecture_of(G_ema, G, D))
        self.meta = meta = self.architecture.metadata(G.init_kwargs)
        res = meta.resolution
        if data.resolution != res or data.channels != meta.channels:
            raise GanzooError(
                f"data is {data.channels}x{data.resolution}x{data.resolution}, the model "
                f"{meta.channels}x{res}x{res}"
            )
        if meta.num_classes > 0 and not data.has_labels:
            raise DatasetError(f"{data.path}: the model is conditional ({meta.num_classes} classes) but the data has no labels; "
                               'add a StyleGAN2-ADA dataset.json beside the images: {"labels": [["a.png", 0], ...]}')  # fmt: skip
        self.batch_gpu = options.batch_gpu or options.batch // self.dist.world
        per_round = self.batch_gpu * self.dist.world
        if options.batch < 1 or self.batch_gpu < 1 or options.batch % per_round != 0:
            raise GanzooError(
                f"batch {options.batch} must be a multiple of batch_gpu {self.batch_gpu} x {self.dist.world} process(es)"
            )
        self.num_chunks = options.batch // self.batch_gpu  # over all processes
        group = self.architecture.batch_multiple(D)
        if group > 1 and self.batch_gpu % min(group, self.batch_gpu) != 0:
            raise GanzooError(f"batch_gpu {self.batch_gpu} must be a multiple of D's minibatch-std group size {group}")
        if options.G_reg_interval is None and options.pl_weight != 0:
            raise GanzooError("pl_weight needs a G_reg_interval (lazy path-length regularization)")
        # Contiguous chunks per process: chunk k of the minibatch always holds the same images.
        per_proc = self.num_chunks // self.dist.world
        self.my_chunks = list(range(self.dist.rank * per_proc, (self.dist.rank + 1) * per_proc))

        self.r1_gamma = options.r1_gamma if options.r1_gamma is not None else 0.0002 * res**2 / options.batch
        self.ema_kimg = options.ema_kimg if options.ema_kimg is not None else options.batch * 10 / 32

        self.augment_pipe: AugmentPipe | None = None
        self.ada: AdaptiveP | None = None
        if options.aug not in ("ada", "fixed", "none"):
            raise GanzooError(f"--aug must be ada, fixed or none, not {options.aug!r}")
        if options.aug != "none":
            self.augment_pipe = AugmentPipe.from_preset(options.aug_preset).to(self.device)
            self.augment_pipe.p.fill_(options.aug_p)
            if options.aug == "ada":
                self.ada = AdaptiveP(options.ada_target, options.ada_interval, options.ada_kimg, p=options.aug_p)

        resolved = TrainingOptions.from_dict({**options.to_dict(), "r1_gamma": self.r1_gamma})
        self.loss: Objective = self.architecture.objective(self.G, self.D, self.augment_pipe, resolved,
                                                           _anchor_penalty(options, self.device))  # fmt: skip
        self.phases = _check_phases(self.architecture.name, self.loss, options, self.r1_gamma)
        self.optimizers = {
            "G": self._adam(self.G, options.lr_G, options.G_reg_interval),
            "D": self._adam(self.D, options.lr_D, options.D_reg_interval),
        }
        self.compiled = self._compile_networks()
        if self.device.type == "cpu":  # activations are reused, not mapped anew each step
            keep_freed_memory()
        self.cur_nimg = 0
        self.batch_idx = 0
        self.last_stats: dict[str, float] = {}
        # (sum of signs, count) of D's real logits over the last ada_interval minibatches: the
        # overfitting heuristic r_t, reported whatever the augmentation mode.
        self._recent_signs: list[tuple[float, float]] = []

    def _compile_networks(self) -> bool:
        """Compiles G's mapping and synthesis networks (G itself if it has none) and D when
        ``options.compile`` asks for it (None: :data:`COMPILE_MIN_KIMG`); records the outcome in
        ``options.compile``."""
        opts = self.options
        wanted = opts.compile
        if wanted is None:
            wanted = (self.device.type == "cpu" and self.architecture.compile_verified
                      and self.meta.resolution >= COMPILE_MIN_RESOLUTION and opts.total_kimg > COMPILE_MIN_KIMG)  # fmt: skip
        done = False
        if wanted:
            from ganzoo.compile import compile_generator, compile_network

            done = all([compile_generator(self.G), compile_network(self.D)])
        opts.compile = done
        return done

    def _phase_runs_eagerly(self, phase: str) -> bool:
        """Phases that differentiate twice (R1, path length; Dmain when R1 is part of D's main
        loss) run eagerly: AOT autograd cannot differentiate compiled graphs twice."""
        return phase in ("Greg", "Dreg") or (phase == "Dmain" and self.options.D_reg_interval is None)

    def _adam(self, net: torch.nn.Module, lr: float, reg_interval: int | None) -> torch.optim.Adam:
        ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
        betas = tuple(b**ratio for b in self.options.betas)
        params = [p for p in net.parameters()]
        if not params:
            raise GanzooError(f"{type(net).__name__}: nothing left to train (every layer is frozen)")
        return torch.optim.Adam(params, lr=lr * ratio, betas=betas, eps=self.options.adam_eps)

    # ------------------------------------------------------------------------------------------
    # One minibatch

    def _phase_due(self, phase: str) -> bool:
        if phase not in ("Greg", "Dreg"):
            return True
        interval = _lazy_intervals(self.options, self.r1_gamma)[phase]
        return bool(interval) and self.batch_idx % interval == 0

    def _chunk_inputs(self, chunk: int, gen: torch.Generator, real: torch.Tensor | None, labels: torch.Tensor | None):
        n = self.batch_gpu
        z = torch.randn([n, self.meta.latent_dim], generator=gen).to(self.device)
        if self.meta.num_classes > 0:
            pick = torch.randint(0, len(self.data), [n], generator=gen)
            gen_c = self.data.labels_at(pick)
            gen_c = gen_c.to(self.device, torch.float32)
        else:
            gen_c = torch.zeros([n, 0], device=self.device)
        real_img = real_c = None
        if real is not None:
            real_img = real[chunk * n : (chunk + 1) * n]
            real_c = labels[chunk * n : (chunk + 1) * n] if labels is not None else torch.zeros([n, 0], device=self.device)
        return real_img, real_c, z, gen_c

    def step(self) -> dict[str, float]:
        """Trains on one minibatch; returns its statistics (losses, ADA p, r_t)."""
        opts = self.options
        # The reals of this minibatch: a pure function of (seed, images shown so far).
        indices = self.data.draw(opts.seed, self.cur_nimg, opts.batch)
        mine = torch.cat([indices[c * self.batch_gpu : (c + 1) * self.batch_gpu] for c in self.my_chunks])
        real_u8, labels = self.data.get(mine)
        real_mine = _images_to_float(real_u8, self.device)
        labels_mine = labels.to(self.device, torch.float32) if labels is not None else None
        # Index local chunks by their global number.
        offset = self.my_chunks[0]

        stats: dict[str, float] = {}
        self.loss.cur_nimg = self.cur_nimg
        for phase_idx, phase in enumerate(PHASES):  # the index seeds the phase's random numbers
            if phase not in self.phases or not self._phase_due(phase):
                continue
            net_name = phase[0]
            net = self.G if net_name == "G" else self.D
            opt = self.optimizers[net_name]
            interval = {"Greg": opts.G_reg_interval, "Dreg": opts.D_reg_interval}.get(phase, 1)
            gain = interval / self.num_chunks
            net.requires_grad_(True)
            opt.zero_grad(set_to_none=True)
            chunk_stats: list[ChunkStats] = []
            with self._phase_mode(phase):
                for chunk in self.my_chunks:
                    seed = chunk_seed(opts.seed, self.batch_idx, phase_idx, chunk)
                    torch.manual_seed(seed)  # the device-side noise (synthesis noise, PL noise)
                    gen = torch.Generator().manual_seed(seed)
                    real_img, real_c, z, gen_c = self._chunk_inputs(
                        chunk - offset, gen, real_mine if phase[0] == "D" else None, labels_mine
                    )
                    chunk_stats.append(self.loss.accumulate(phase, real_img, real_c, z, gen_c, gain, gen))
            net.requires_grad_(False)
            self._reduce_and_step(net, opt)
            stats.update(self._apply_phase_stats(phase, chunk_stats))
            self.loss.after_phase(phase, self.dist)

        self._update_ema()
        self.cur_nimg += opts.batch
        self.batch_idx += 1
        if self.ada is not None:
            self.ada.step(self.batch_idx, opts.batch, all_reduce=self.dist.sum_floats if self.dist.active else None)
            self.augment_pipe.p.fill_(self.ada.p)
            if self.ada.last_rt is not None:
                stats["ada_rt"] = self.ada.last_rt
        stats["ada_p"] = float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0
        self.last_stats = stats
        return stats

    def _phase_mode(self, phase: str):
        if self.compiled and self._phase_runs_eagerly(phase):
            from ganzoo.compile import eager

            return eager(self.G, self.D)
        return contextlib.nullcontext()

    def _reduce_and_step(self, net: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        params = fill_unreached_grads(net.parameters())
        if self.dist.active and params:
            flat = torch.cat([p.grad.flatten() for p in params])
            self.dist.sum_(flat)
            for p, g in zip(params, flat.split([p.numel() for p in params])):
                p.grad.copy_(g.reshape(p.shape))
        for p in params:
            # As published: a rare inf/nan (fp16 overflow) must not destroy the weights.
            torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()

    def _apply_phase_stats(self, phase: str, chunk_stats: list[ChunkStats]) -> dict[str, float]:
        """Reduces the chunks' statistics, hands the objective its running totals and feeds
        the ADA accumulator."""
        out = {}
        totals = self.dist.sum_floats([sum(s.loss_sum for s in chunk_stats), float(sum(s.loss_count for s in chunk_stats))])
        if totals[1] > 0:
            name = {"Gmain": "loss_G", "Greg": "pl_penalty", "Dmain": "loss_D", "Dreg": "r1_penalty"}[phase]
            out[name] = totals[0] / totals[1]
        # The objective's running statistics: summed over chunks and processes, handed back.
        sums, counts = {}, {}
        for key in sorted({key for s in chunk_stats for key in s.sums}):
            parts = [s.sums[key] for s in chunk_stats if key in s.sums]
            sums[key] = self.dist.sum_(torch.stack(parts).sum(dim=0).reshape(-1).to(torch.float32))
            counts[key] = self.dist.sum_floats([float(sum(s.counts.get(key, 0) for s in chunk_stats))])[0]
        if sums:
            out.update(self.loss.update_running(phase, sums, counts))
        if self.ada is not None:  # every D pass on reals: Dmain and the lazy R1 pass
            for s in chunk_stats:
                if s.real_logits is not None:
                    self.ada.accumulate(s.real_logits)
        if phase == "Dmain":
            logits = [s.real_logits for s in chunk_stats if s.real_logits is not None]
            if logits:
                signs = self.dist.sum_floats([float(torch.cat(logits).sign().sum()), float(sum(len(x) for x in logits))])
                out["rt_batch"] = signs[0] / max(signs[1], 1)
                self._recent_signs = (self._recent_signs + [(signs[0], signs[1])])[-self.options.ada_interval :]
                out["rt"] = sum(a for a, _ in self._recent_signs) / max(sum(b for _, b in self._recent_signs), 1)
        return out

    @torch.no_grad()
    def _update_ema(self) -> None:
        opts = self.options
        if self.cur_nimg < opts.ema_start_kimg * 1000:
            beta = 0.0  # not started: G_ema follows G
        elif opts.ema_beta is not None:
            beta = float(opts.ema_beta)
        else:
            ema_nimg = self.ema_kimg * 1000
            if opts.ema_rampup is not None:
                ema_nimg = min(ema_nimg, self.cur_nimg * opts.ema_rampup)
            beta = 0.5 ** (opts.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # ------------------------------------------------------------------------------------------
    # State for exact resume

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The training state beyond the weights: optimizer moments (tensors) and counters,
        ADA state and settings (JSON-able)."""
        tensors: dict[str, torch.Tensor] = {k: v.detach().cpu().clone() for k, v in self.loss.state_dict().items()}
        for name, opt in self.optimizers.items():
            for idx, state in opt.state_dict()["state"].items():
                for key, value in state.items():
                    value = torch.as_tensor(value)
                    tensors[f"opt_{name}.{idx}.{key}"] = value.detach().cpu().contiguous().clone()
        meta = {
            "cur_nimg": self.cur_nimg,
            "batch_idx": self.batch_idx,
            "ada": self.ada.state() if self.ada is not None else None,
            "aug_p": float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0,
            "options": self.options.to_dict(),
            "data_sha256": self.data.sha256,
            "optimizer_shapes": {name: len(list(opt.param_groups[0]["params"])) for name, opt in self.optimizers.items()},
        }
        return tensors, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Restores what :meth:`state_tensors` saved (after the weights were loaded)."""
        self.cur_nimg = int(meta["cur_nimg"])
        self.batch_idx = int(meta["batch_idx"])
        self.loss.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("opt_")})
        if self.ada is not None and meta.get("ada") is not None:
            self.ada.load_state(meta["ada"])
        if self.augment_pipe is not None:
            self.augment_pipe.p.fill_(float(meta.get("aug_p", 0.0)))
        for name, opt in self.optimizers.items():
            expected = int(meta["optimizer_shapes"][name])
            params = opt.param_groups[0]["params"]
            if expected != len(params):
                raise GanzooError(f"training state: optimizer {name} has {expected} parameters, the network {len(params)}")
            state_dict = opt.state_dict()
            state: dict[int, dict[str, torch.Tensor]] = {}
            prefix = f"opt_{name}."
            for key, value in tensors.items():
                if not key.startswith(prefix):
                    continue
                idx_text, field_name = key[len(prefix) :].split(".", 1)
                idx = int(idx_text)
                state.setdefault(idx, {})[field_name] = value.clone()
            state_dict["state"] = state
            opt.load_state_dict(state_dict)


def train(trainer: Trainer, until_nimg: int, callback: Callable[[Trainer, dict], bool] | None = None) -> None:
    """Runs minibatches until ``until_nimg`` images; ``callback(trainer, stats)`` after each may
    return True to stop early (snapshots, progress)."""
    while trainer.cur_nimg < until_nimg:
        stats = trainer.step()
        if callback is not None and callback(trainer, stats):
            break


__all__ = ["COMPILE_MIN_KIMG", "COMPILE_MIN_RESOLUTION", "FAMILY_OPTIONS", "TrainingOptions", "Trainer", "Distributed", "chunk_seed", "train"]
