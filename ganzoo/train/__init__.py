"""Training: the minibatch engine, ADA, and the transfer recipes behind ``ganzoo finetune``.

Modules: ``loop`` (the minibatch engine: phases, lazy regularization, EMA, accumulation, DDP),
``loss`` (the objective interface and shared regularizers), ``augment`` (the ADA pipeline and
controller), ``recipes`` (full / freezed / adafm / scratch), ``dataset`` (in-memory images,
sampler), ``runner`` (``finetune``: run directory, snapshots, resume, logs).

``loss`` and ``augment`` are building blocks the families' objectives use; they import nothing of
ganzoo but ``errors``. So that importing them does not load the rest of training (and, through
it, the checkpoint and Hub layers), this package's names are resolved on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Public name -> the module that defines it (full names: tests/test_structure.py counts them as imports).
_NAMES = {
    "AdaptiveP": "ganzoo.train.augment",
    "AugmentPipe": "ganzoo.train.augment",
    "Trainer": "ganzoo.train.loop",
    "TrainingOptions": "ganzoo.train.loop",
    "RECIPES": "ganzoo.train.recipes",
    "prepare": "ganzoo.train.recipes",
    "FinetuneOptions": "ganzoo.train.options",
    "finetune": "ganzoo.train.runner",
    "latest_snapshot": "ganzoo.train.runner",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from ganzoo.train.augment import AdaptiveP, AugmentPipe
    from ganzoo.train.loop import Trainer, TrainingOptions
    from ganzoo.train.options import FinetuneOptions
    from ganzoo.train.recipes import RECIPES, prepare
    from ganzoo.train.runner import finetune, latest_snapshot

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
