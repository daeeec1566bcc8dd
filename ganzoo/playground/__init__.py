"""A faithful reproduction of the 2-D toy study of Grigoryev, Voynov & Babenko, "When, Why, and
Which Pretrained GANs Are Useful?" (ICLR 2022, §2.2 and appendix): a pretrained generator decides
which target modes finetuning can reach (measured by recall) and a pretrained discriminator
supplies the gradient field that moves samples towards them; both predict W1 after finetuning.

One call runs the study and writes figures and reports::

    from ganzoo.playground import reproduce
    run = reproduce("out/playground", quick=True, seeds=[0, 1])
    run.summary["figure3"]["recall_vs_w1_final"]      # {"mean": ..., "std": ..., "values": [...]}

The pieces are public too: the distributions (:mod:`~ganzoo.playground.data`), the networks as
stacks of independent models (:mod:`~ganzoo.playground.nets`), the training loop
(:mod:`~ganzoo.playground.train`) and the metrics (:mod:`~ganzoo.playground.metrics`).
"""

from __future__ import annotations

from ganzoo.playground.data import GaussianMixture, Ring, source_one, source_two, target_distribution
from ganzoo.playground.metrics import gradient_similarity, modes_covered, precision, recall, wasserstein1
from ganzoo.playground.nets import DiscriminatorStack, GeneratorStack
from ganzoo.playground.report import PAPER, Reproduction, combine, reproduce
from ganzoo.playground.study import FULL, QUICK, SeedResult, StudyConfig, run_seed, summarize
from ganzoo.playground.train import TrainConfig, sample_generators, train_gans

__all__ = [
    "FULL",
    "PAPER",
    "QUICK",
    "DiscriminatorStack",
    "GaussianMixture",
    "GeneratorStack",
    "Reproduction",
    "Ring",
    "combine",
    "SeedResult",
    "StudyConfig",
    "TrainConfig",
    "gradient_similarity",
    "modes_covered",
    "precision",
    "recall",
    "reproduce",
    "run_seed",
    "sample_generators",
    "source_one",
    "source_two",
    "summarize",
    "target_distribution",
    "train_gans",
    "wasserstein1",
]
