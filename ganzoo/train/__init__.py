"""Training: the StyleGAN2-ADA engine, ADA, and the transfer recipes behind ``ganzoo finetune``.

Modules: ``loop`` (the minibatch engine: phases, lazy regularization, EMA, accumulation, DDP),
``loss`` (objective and regularizers), ``augment`` (the ADA pipeline and controller),
``recipes`` (full / freezed / adafm / scratch), ``dataset`` (in-memory images, sampler),
``runner`` (``finetune``: run directory, snapshots, resume, logs).
"""

from ganzoo.train.augment import AdaptiveP, AugmentPipe
from ganzoo.train.loop import Trainer, TrainingOptions
from ganzoo.train.recipes import RECIPES, prepare
from ganzoo.train.runner import finetune, latest_snapshot

__all__ = ["RECIPES", "AdaptiveP", "AugmentPipe", "Trainer", "TrainingOptions", "finetune", "latest_snapshot", "prepare"]
