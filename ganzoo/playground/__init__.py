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

# Submodules import torch, numpy and scipy; the package itself stays light so that the CLI
# (which registers `ganzoo playground`) starts fast. Names resolve on first use (PEP 562).
_LAZY = {
    "DiscriminatorStack": "ganzoo.playground.nets",
    "FULL": "ganzoo.playground.study",
    "GaussianMixture": "ganzoo.playground.data",
    "GeneratorStack": "ganzoo.playground.nets",
    "PAPER": "ganzoo.playground.report",
    "QUICK": "ganzoo.playground.study",
    "Reproduction": "ganzoo.playground.report",
    "Ring": "ganzoo.playground.data",
    "SeedResult": "ganzoo.playground.study",
    "StudyConfig": "ganzoo.playground.study",
    "TrainConfig": "ganzoo.playground.train",
    "combine": "ganzoo.playground.report",
    "gradient_similarity": "ganzoo.playground.metrics",
    "modes_covered": "ganzoo.playground.metrics",
    "precision": "ganzoo.playground.metrics",
    "recall": "ganzoo.playground.metrics",
    "reproduce": "ganzoo.playground.report",
    "run_seed": "ganzoo.playground.study",
    "sample_generators": "ganzoo.playground.train",
    "source_one": "ganzoo.playground.data",
    "source_two": "ganzoo.playground.data",
    "summarize": "ganzoo.playground.study",
    "target_distribution": "ganzoo.playground.data",
    "train_gans": "ganzoo.playground.train",
    "wasserstein1": "ganzoo.playground.metrics",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ganzoo.playground' has no attribute {name!r}")


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
