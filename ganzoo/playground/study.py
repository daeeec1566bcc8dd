"""The study itself: Figure 2 (which source helps) and Figure 3 (why) of Grigoryev et al. (2022).

For one seed, :func:`run_seed`

1. pretrains a GAN on Source-I and one on Source-II (one stack of two), keeping a snapshot of
   Source-I's (G, D) every ``checkpoint_every`` G steps — after 0, 50, …, 4950 steps in the full
   study, 100 checkpoints;
2. measures, for every starting point, the recall of its generator w.r.t. the target and the
   similarity of its discriminator's gradient field to the "golden" directions;
3. finetunes every starting point on the target *in one stack*: the two final source models and
   a random initialisation (Figure 2) and the 100 Source-I checkpoints (Figure 3) — 103
   independent GANs sharing each matrix product — evaluating the exact W1 to the target every
   ``eval_every`` G steps;
4. reports W1 after finetuning and its Pearson correlation with the starting metrics.

W1 is reported two ways: ``w1_final`` after the last finetuning step (the quantity the paper's
text describes) and ``w1_best``, the smallest W1 of the evaluations made during finetuning,
which is what the authors' notebook correlates (its ``np.min`` over ``metrics.json``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, NamedTuple, Optional

import numpy as np
import torch

from ganzoo.errors import GanzooError
from ganzoo.playground import metrics
from ganzoo.playground.data import sample_per_model, source_one, source_two, target_distribution
from ganzoo.playground.nets import DiscriminatorStack, GeneratorStack
from ganzoo.playground.train import TrainConfig, sample_generators, train_gans

ProgressFn = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as G steps complete in each stage."""

FIGURE2_MODELS = ("source_one", "source_two", "random")   # Finetune-stack order, Figure 2 first.


@dataclass(frozen=True)
class StudyConfig:
    """What one run of the study does. :data:`FULL` is the paper's setting.

    Attributes:
        pretrain_steps: G steps of source pretraining (paper: 5000).
        finetune_steps: G steps of finetuning on the target (paper: 1000).
        checkpoint_every: G steps between the Source-I snapshots of Figure 3 (paper: 50).
        eval_every: G steps between W1 evaluations during finetuning (authors' code: 250).
        w1_samples: generated and target points per W1 evaluation (authors' code: 2048).
        metric_samples: generated and target points for recall, precision and the gradient
            similarity (paper: 1000 vs 1000).
        recall_k: k of the k-NN balls (paper: 5).
        train: optimisation settings.
    """

    pretrain_steps: int = 5000
    finetune_steps: int = 1000
    checkpoint_every: int = 50
    eval_every: int = 250
    w1_samples: int = 2048
    metric_samples: int = 1000
    recall_k: int = metrics.RECALL_K
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def checkpoint_steps(self) -> list[int]:
        """G-step counts at which Source-I is snapshotted: 0, every, 2·every, … < pretrain_steps."""
        return list(range(0, self.pretrain_steps, self.checkpoint_every))

    @property
    def eval_steps(self) -> list[int]:
        """G-step counts of finetuning at which W1 is evaluated (0 is the starting point)."""
        steps = list(range(0, self.finetune_steps, self.eval_every))
        return steps + [self.finetune_steps]

    def validate(self) -> None:
        """Raises :class:`GanzooError` for settings the study cannot run with."""
        for name in ("pretrain_steps", "finetune_steps", "checkpoint_every", "eval_every", "w1_samples"):
            if getattr(self, name) < 1:
                raise GanzooError(f"playground: {name} must be at least 1, not {getattr(self, name)}")
        if self.metric_samples <= self.recall_k or self.w1_samples <= self.recall_k:
            raise GanzooError(f"playground: recall with k={self.recall_k} needs more than {self.recall_k} samples")
        if len(self.checkpoint_steps) < 3:
            raise GanzooError("playground: Figure 3 needs at least 3 checkpoints "
                              "(pretrain_steps / checkpoint_every >= 3)")

    def to_dict(self) -> dict:
        """The settings as plain JSON-able data."""
        data = asdict(self)
        data["num_checkpoints"] = len(self.checkpoint_steps)
        return data


FULL = StudyConfig()
"""The paper's setting: 5000 pretraining steps, 100 checkpoints, 1000 finetuning steps."""

QUICK = StudyConfig(pretrain_steps=2000, finetune_steps=300, checkpoint_every=100, eval_every=100,
                    w1_samples=1024)
"""A few-minute version: 2000 pretraining steps (Source-I has reached the ring by then), 20
checkpoints, 300 finetuning steps, W1 on 1024 points."""


@dataclass
class SeedResult:
    """Everything one seed of the study produced.

    Attributes:
        seed: the seed.
        figure2: per starting point (``source_one``, ``source_two``, ``random``): its metrics
            before finetuning (``start_*``) and after (``w1_final``, ``w1_best``, ``recall``,
            ``precision``, ``modes_covered``), and its W1 at every evaluation (``w1_curve``).
        figure3: per Source-I checkpoint (lists, in checkpoint order): ``checkpoint_steps``,
            ``recall``, ``grad_similarity``, ``w1_final``, ``w1_best``; and ``pearson``.
        samples: point clouds for the plots (not serialised).
    """

    seed: int
    figure2: dict
    figure3: dict
    samples: dict = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able data (without the point clouds)."""
        return {"seed": self.seed, "figure2": self.figure2, "figure3": self.figure3}


def _round(value: float, digits: int = 6) -> Optional[float]:
    """Rounds for stable, readable JSON; NaN (undefined correlation) becomes None."""
    value = float(value)
    return None if math.isnan(value) else round(value, digits)


def pearson(x: np.ndarray, y: np.ndarray) -> dict:
    """Pearson's r and its two-sided p-value; both None when a variable is constant.

    Args:
        x: first variable.
        y: second variable, same length.

    Returns:
        ``{"r": float | None, "p": float | None}``.
    """
    from scipy import stats

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"r": None, "p": None}
    result = stats.pearsonr(x, y)
    return {"r": _round(result.statistic), "p": float(f"{result.pvalue:.3e}")}


def run_seed(config: StudyConfig, seed: int, progress: Optional[ProgressFn] = None) -> SeedResult:
    """Runs the whole study for one seed.

    Args:
        config: what to run (:data:`FULL`, :data:`QUICK` or your own).
        seed: seeds every random draw (weights, latents, data), so a seed gives the same result
            on the same machine and thread count.
        progress: optional ``progress(stage, done, total)`` callback.

    Returns:
        The seed's :class:`SeedResult`.
    """
    config.validate()
    rng = torch.Generator().manual_seed(seed)
    target, ring, three = target_distribution(), source_one(), source_two()
    report = progress or (lambda stage, done, total: None)

    # 1. Pretrain Source-I (model 0) and Source-II (model 1) together; snapshot Source-I.
    G, starts = _pretrain(config, seed, [ring, three], rng, report)
    pretrained_samples = sample_generators(G, config.metric_samples, rng)    # [2, N, 2]

    # 2. Starting metrics of every starting point (eval-mode G, as the authors measure them).
    G_ft = GeneratorStack.from_model_states([g for g, _ in starts])
    D_ft = DiscriminatorStack.from_model_states([d for _, d in starts])
    start = _measure(G_ft, target, config, rng)
    start_grad = metrics.gradient_similarity(D_ft, start.fake, target.centers)

    # 3. Finetune all starting points on the target at once, evaluating W1 along the way.
    curves, final_fake = _finetune(config, seed, G_ft, D_ft, target, rng, report)

    # 4. Final metrics.
    w1_final, w1_best = curves[:, -1], curves.min(dim=1).values
    end = _measure(G_ft, target, config, rng)
    end_modes = metrics.modes_covered(final_fake, target.centers, target.sigma)
    start_modes = metrics.modes_covered(start.fake, target.centers, target.sigma)
    figure2 = {}
    for index, name in enumerate(FIGURE2_MODELS):
        figure2[name] = {
            "start_w1": _round(curves[index, 0]),
            "start_recall": _round(start.recall[index]),
            "start_precision": _round(start.precision[index]),
            "start_grad_similarity": _round(start_grad[index]),
            "start_modes_covered": int(start_modes[index]),
            "w1_final": _round(w1_final[index]),
            "w1_best": _round(w1_best[index]),
            "recall": _round(end.recall[index]),
            "precision": _round(end.precision[index]),
            "modes_covered": int(end_modes[index]),
            "w1_curve": [_round(v) for v in curves[index]],
        }
    figure3 = _figure3(config, start.recall, start_grad, w1_final, w1_best)
    samples = {
        "target": target.sample(config.metric_samples, rng).numpy(),
        "source_one": ring.sample(config.metric_samples, rng).numpy(),
        "source_two": three.sample(config.metric_samples, rng).numpy(),
        "pretrained_source_one": pretrained_samples[0].numpy(),
        "pretrained_source_two": pretrained_samples[1].numpy(),
        **{f"finetuned_{name}": end.fake[i].numpy() for i, name in enumerate(FIGURE2_MODELS)},
    }
    return SeedResult(seed=seed, figure2=figure2, figure3=figure3, samples=samples)


def _pretrain(config: StudyConfig, seed: int, sources: list, rng: torch.Generator,
              report: ProgressFn) -> tuple[GeneratorStack, list[tuple[dict, dict]]]:  # fmt: skip
    """Pretrains one GAN per source (one stack); returns the generators and every starting point
    of finetuning, as (G, D) model states: the two final source models, a random
    initialisation (Figure 2), then the snapshots of the first source (Figure 3)."""
    G = GeneratorStack(2, generator=rng)
    D = DiscriminatorStack(2, generator=rng)
    snapshots = [(G.model_state(0), D.model_state(0))]
    stage = f"seed {seed}: pretrain Source-I/II"
    report(stage, 0, config.pretrain_steps)

    def after_pretrain_step(done: int) -> None:
        if done % config.checkpoint_every == 0 and done < config.pretrain_steps:
            snapshots.append((G.model_state(0), D.model_state(0)))
        report(stage, done, config.pretrain_steps)

    train_gans(G, D, sources, config.pretrain_steps, rng, config.train, after_pretrain_step)
    random_g, random_d = GeneratorStack(1, generator=rng), DiscriminatorStack(1, generator=rng)
    starts = [(G.model_state(0), D.model_state(0)), (G.model_state(1), D.model_state(1)),
              (random_g.model_state(0), random_d.model_state(0))] + snapshots
    return G, starts


class _Measured(NamedTuple):
    """Samples of every model of a stack and their recall and precision w.r.t. the target."""

    fake: torch.Tensor  # [M, N, 2]
    recall: torch.Tensor
    precision: torch.Tensor


def _measure(G: GeneratorStack, target: Any, config: StudyConfig, rng: torch.Generator) -> _Measured:
    """``config.metric_samples`` samples of every generator of ``G``, measured against as many target points."""
    fake = sample_generators(G, config.metric_samples, rng)                   # [M, N, 2]
    real = sample_per_model([target] * G.num_models, config.metric_samples, rng)
    return _Measured(fake, metrics.recall(real, fake, config.recall_k), metrics.precision(real, fake, config.recall_k))


def _finetune(config: StudyConfig, seed: int, G: GeneratorStack, D: DiscriminatorStack, target: Any,
              rng: torch.Generator, report: ProgressFn) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Finetunes every model of the stacks on the target; returns the W1 curves ``[M, evals]``
    (one evaluation every ``eval_every`` G steps, the first before any step) and the samples
    of the last evaluation."""
    num_models = G.num_models
    w1_curves: list[torch.Tensor] = []
    final_fake: list[torch.Tensor] = []

    def evaluate(done: int) -> None:
        fake_w1 = sample_generators(G, config.w1_samples, rng)
        real_w1 = sample_per_model([target] * num_models, config.w1_samples, rng)
        w1_curves.append(metrics.wasserstein1(fake_w1, real_w1))
        if done == config.finetune_steps:
            final_fake.append(fake_w1)

    stage = f"seed {seed}: finetune {num_models} GANs"
    report(stage, 0, config.finetune_steps)
    evaluate(0)

    def after_finetune_step(done: int) -> None:
        if done % config.eval_every == 0 or done == config.finetune_steps:
            evaluate(done)
        report(stage, done, config.finetune_steps)

    train_gans(G, D, [target] * num_models, config.finetune_steps, rng, config.train, after_finetune_step)
    return torch.stack(w1_curves, dim=1), final_fake[0]


def _figure3(config: StudyConfig, recall: torch.Tensor, grad: torch.Tensor, w1_final: torch.Tensor,
             w1_best: torch.Tensor) -> dict:  # fmt: skip
    """Figure 3: the Source-I checkpoints' starting metrics, their W1 after finetuning, and the
    correlations between them (the models after those of Figure 2)."""
    first = len(FIGURE2_MODELS)
    recall3, grad3 = recall[first:].numpy(), grad[first:].numpy()
    final3, best3 = w1_final[first:].numpy(), w1_best[first:].numpy()
    return {
        "checkpoint_steps": config.checkpoint_steps,
        "recall": [_round(v) for v in recall3],
        "grad_similarity": [_round(v) for v in grad3],
        "w1_final": [_round(v) for v in final3],
        "w1_best": [_round(v) for v in best3],
        "pearson": {
            "recall_vs_w1_final": pearson(recall3, final3),
            "grad_similarity_vs_w1_final": pearson(grad3, final3),
            "recall_vs_w1_best": pearson(recall3, best3),
            "grad_similarity_vs_w1_best": pearson(grad3, best3),
            "grad_similarity_vs_recall": pearson(grad3, recall3),
        },
    }


def summarize(results: list[SeedResult]) -> dict:
    """Mean and standard deviation over seeds of the headline numbers.

    Args:
        results: one :class:`SeedResult` per seed.

    Returns:
        ``{"figure2": {model: {metric: {"mean", "std", "values"}}}, "figure3": {...},
        "checks": {...}}``; ``std`` is the sample standard deviation (None for one seed).
    """

    def stats(values: list) -> dict:
        clean = [v for v in values if v is not None]
        if not clean:
            return {"mean": None, "std": None, "values": values}
        array = np.asarray(clean, dtype=np.float64)
        std = _round(array.std(ddof=1)) if len(array) > 1 else None
        return {"mean": _round(array.mean()), "std": std, "values": values}

    figure2 = {
        name: {
            metric: stats([r.figure2[name][metric] for r in results])
            for metric in ("w1_final", "w1_best", "start_recall", "start_grad_similarity", "recall",
                           "precision", "modes_covered")
        }
        for name in FIGURE2_MODELS
    }
    keys = results[0].figure3["pearson"].keys()
    figure3 = {key: stats([r.figure3["pearson"][key]["r"] for r in results]) for key in keys}

    def ordered(r: SeedResult, metric: str) -> bool:
        f2 = r.figure2
        return f2["source_one"][metric] < f2["source_two"][metric] < f2["random"][metric]

    checks = {
        "w1_final_ordering_holds": [ordered(r, "w1_final") for r in results],
        "w1_best_ordering_holds": [ordered(r, "w1_best") for r in results],
        "source_one_beats_random": [
            r.figure2["source_one"]["w1_final"] < r.figure2["random"]["w1_final"] for r in results
        ],
        "source_one_recall_above_source_two": [
            r.figure2["source_one"]["start_recall"] > r.figure2["source_two"]["start_recall"] for r in results
        ],
    }
    return {"figure2": figure2, "figure3": figure3, "checks": checks}
