"""The settings of a training run, one object for :func:`ganzoo.finetune`, ``pretrain`` and ``merge``.

:class:`FinetuneOptions` holds what a run is asked to do (length, batch, seed, augmentation,
learning rate, recipe settings, snapshots, metrics, device, progress); the commands build it
once from their flags, and the Python functions take it as ``options=`` or as keyword
arguments (which fill and override it)::

    opts = FinetuneOptions(kimg=200, batch=16, recipe="freezed", lr=0.002)
    ganzoo.finetune("afhqcat-stylegan2-512", "./mycats", "runs/cats", options=opts)
    ganzoo.finetune("afhqcat-stylegan2-512", "./mycats", "runs/cats", kimg=200, batch=16, recipe="freezed", lr=0.002)

Both calls train the same run. The loop's own settings (the family's schedule, regularization,
EMA) are :class:`~ganzoo.train.loop.TrainingOptions`, built from these over the family's
:meth:`~ganzoo.architectures.Architecture.training_defaults`; ``training`` carries any further
field of it (``G_ortho``, ``pl_weight``, ``compile``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Mapping, Sequence

from ganzoo.train.loop import TrainingOptions

#: :class:`~ganzoo.train.loop.TrainingOptions` fields set from a :class:`FinetuneOptions` field of
#: another name (or the same name): given in ``training`` they are refused, naming the field to use.
SET_FROM = {"batch": "batch", "batch_gpu": "batch_gpu", "seed": "seed", "total_kimg": "kimg", "aug": "aug",
            "aug_preset": "aug_preset", "aug_p": "p", "ada_target": "target", "ema_kimg": "ema_kimg"}  # fmt: skip


def default_batch(resolution: int) -> int:
    """The StyleGAN2-ADA 'auto' batch for one GPU: min(4096 / res, 32), at least 4."""
    return max(min(4096 // resolution, 32), 4)


@dataclass(frozen=True)
class FinetuneOptions:
    """The settings of one training run (:func:`ganzoo.finetune`, ``pretrain``, every stage of
    ``merge``). None means "not given": the default said here applies, and a resumed run keeps
    its own value.

    Attributes:
        recipe: ``'full'`` (None: ``'full'``), ``'freezed'``, ``'adafm'`` or ``'scratch'``
            (:mod:`ganzoo.train.recipes`; ``pretrain`` always ``'scratch'``, ``merge`` per stage).
        kimg: train until D has seen this many thousand images, counting from 0 (None: 100;
            with ``resume``, the run's own total).
        snap: snapshot interval in kimg, also written at the end (None: 50, or the run's own).
        tick_kimg: log (and progress) interval in kimg.
        keep_snapshots: keep only the newest this many snapshots (None: all).
        batch: minibatch size (None: the StyleGAN2-ADA default for the resolution,
            :func:`default_batch`).
        batch_gpu: images per chunk (gradient accumulation; None: the whole batch per process).
        seed: the seed of everything (same seed, same bytes on CPU; None: 0).
        aug: ``'ada'`` (adaptive p; None: ``'ada'``, ``pretrain``: ``'none'``), ``'fixed'``
            (p = ``p``) or ``'none'``.
        p: augmentation probability (``fixed``; initial value for ``ada``).
        aug_preset: ``'bgc'`` (None: ``'bgc'``) or ``'bgcfnc'``, ...
        target: ADA target of ``r_t`` (None: 0.6).
        lr: learning rate of G and D (None: the family's, 0.0025 for StyleGAN2, 0.002 at 1024²).
        gamma: R1 weight (None: the family's, ``0.0002·res²/batch`` for StyleGAN2).
        ema_kimg: G EMA half-life in kimg (None: the family's, ``batch·10/32`` for StyleGAN2).
        resolution: ``finetune``: resample the data to this resolution (must be the source's).
        mirror: add x-flips of the data.
        strict: unreadable data files are an error naming them all, not skipped with one
            warning naming them (``--strict``; the rule of ``rank`` and ``metrics`` too).
        freeze_d: ``freezed``: number of D layers to freeze.
        general_g, general_d: ``adafm``: general-part blocks of G and D.
        allow_random_d: start D from scratch when the source has none.
        adafm_variant: ``adafm``: ``'keep'`` (None: the default; every transferred block) or
            ``'paper'`` (the split as the AdaFM authors' code builds it, where the architecture
            defines it: GP-GAN's, see :mod:`ganzoo.train.recipes`).
        metrics: metric names (``fid``, ``kid``, ``pr``) computed at each snapshot.
        metrics_options: further arguments of :func:`ganzoo.metrics.evaluate.evaluate` (e.g.
            ``num_gen``, default 50k; ``allow_random_weights`` for tests).
        device: ``'cpu'``, ``'cuda'``, ... (checked first: a missing CUDA is one line).
        threads: torch's CPU threads while the run trains: a count, or a
            :class:`ganzoo._threads.Threads` (what the command line chose: ``--threads``,
            ``GANZOO_THREADS`` or the cores idle at start); None: torch's setting as it is.
            Recorded in ``run.json`` (``threads``: count and where it came from); it may change on
            resume.
        progress: show progress: a rich bar on a terminal, else one plain line per tick.
        progress_label: what the progress calls the run (None: the command, ``finetune`` or
            ``pretrain``; ``merge`` names its stages).
        callback: called with ``(trainer, stats)`` after every minibatch.
        source_label: how the lineage names the parent (None: the source as given).
        lineage_notes: sentences added to the run's lineage step (e.g. what the data was).
        resume_hint: what the line printed on an interrupt (with ``progress``) tells the user to
            run to continue (None: ``--resume OUT``); ``""``: no line.
        training: further :class:`~ganzoo.train.loop.TrainingOptions` fields, e.g.
            ``{"G_ortho": 1e-4}`` (BigGAN's orthogonal regularization of G, ``--g-ortho``; a
            family's own option is refused, in one line, for a source of a family that does not
            train with it). As keyword arguments they are given flat: ``G_ortho=1e-4``.

    A resumed run keeps its settings: ``recipe``, ``aug``, ``p``, ``aug_preset``, ``batch``,
    ``seed``, ``lr``, ``gamma``, ``ema_kimg``, ``target``, ``mirror``, ``resolution``,
    ``freeze_d``, ``general_g``, ``general_d``, ``adafm_variant`` and ``training`` that differ
    from the run's are refused (in one line naming them); ``kimg`` (not below where the run is),
    ``snap``, ``batch_gpu``, ``metrics``, ``metrics_options`` and ``threads`` may change, and are
    applied and recorded in ``run.json``; ``device``, ``tick_kimg``, ``keep_snapshots``, ``progress`` and
    ``callback`` apply.
    """

    recipe: str | None = None
    kimg: float | None = None
    snap: float | None = None
    tick_kimg: float = 4.0
    keep_snapshots: int | None = None
    batch: int | None = None
    batch_gpu: int | None = None
    seed: int | None = None
    aug: str | None = None
    p: float | None = None
    aug_preset: str | None = None
    target: float | None = None
    lr: float | None = None
    gamma: float | None = None
    ema_kimg: float | None = None
    resolution: int | None = None
    mirror: bool = False
    strict: bool = False
    freeze_d: int | None = None
    general_g: int | None = None
    general_d: int | None = None
    allow_random_d: bool = False
    adafm_variant: str | None = None
    metrics: Sequence[str] = ()
    metrics_options: dict | None = None
    device: str = "cpu"
    threads: Any = None
    progress: bool = True
    progress_label: str | None = None
    callback: Callable[[Any, dict], None] | None = None
    source_label: str | None = None
    lineage_notes: Sequence[str] = ()
    resume_hint: str | None = None
    training: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = set(TrainingOptions.__dataclass_fields__)
        unknown = sorted(k for k in self.training if k not in known)
        if unknown:
            raise TypeError(f"FinetuneOptions: training has unknown TrainingOptions field(s) {', '.join(unknown)}")
        doubled = sorted(k for k in self.training if k in SET_FROM)
        if doubled:
            raise TypeError(f"FinetuneOptions: training {', '.join(doubled)}: give "
                            f"{', '.join(SET_FROM[k] for k in doubled)} instead")  # fmt: skip
        object.__setattr__(self, "training", dict(self.training))

    @classmethod
    def of(cls, options: FinetuneOptions | None, keywords: Mapping[str, Any], what: str) -> FinetuneOptions:
        """``options`` (None: the defaults) with ``keywords`` filled in over it: fields of this
        class by name, :class:`~ganzoo.train.loop.TrainingOptions` fields into ``training``.

        Raises:
            TypeError: a keyword that is neither (``what``: the function that was called).
        """
        options = cls() if options is None else options
        if not isinstance(options, cls):
            raise TypeError(f"{what}() options must be a FinetuneOptions, not {type(options).__name__}")
        own = {f.name for f in fields(cls)}
        flat = {k: v for k, v in keywords.items() if k not in own}
        unknown = sorted(k for k in flat if k not in TrainingOptions.__dataclass_fields__)
        if unknown:
            raise TypeError(f"{what}() got unexpected keyword argument(s) {', '.join(unknown)}")
        given = {k: v for k, v in keywords.items() if k in own}
        if flat or "training" in given:
            given["training"] = {**options.training, **given.get("training", {}), **flat}
        return replace(options, **given) if given else options

    def keywords(self) -> dict[str, Any]:
        """The keyword form of these options: the fields not at their default, ``training``'s
        entries among them (``FinetuneOptions.of(None, opts.keywords(), ...) == opts``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "training":
                out.update(value)
            elif value != (f.default_factory() if callable(f.default_factory) else f.default):
                out[f.name] = value
        return out

    def check(self) -> None:
        """Refuses, in one line naming the flag, settings out of range
        (:func:`ganzoo.train.checks.check_settings`), before anything is loaded."""
        from ganzoo.train.checks import check_settings

        check_settings(kimg=self.kimg, snap=self.snap, tick_kimg=self.tick_kimg, keep_snapshots=self.keep_snapshots,
                       recipe=self.recipe, batch=self.batch, batch_gpu=self.batch_gpu, seed=self.seed, lr=self.lr,
                       gamma=self.gamma, p=self.p, aug=self.aug, aug_preset=self.aug_preset, target=self.target,
                       ema_kimg=self.ema_kimg, freeze_d=self.freeze_d, general_g=self.general_g,
                       general_d=self.general_d, resolution=self.resolution, adafm_variant=self.adafm_variant,
                       **self.training)  # fmt: skip

    def training_overrides(self) -> dict[str, Any]:
        """The :class:`~ganzoo.train.loop.TrainingOptions` values these options set over a family's
        defaults (``lr``, ``gamma``, ``ema_kimg`` and ``training``; a half-life asked for replaces
        a fixed EMA decay)."""
        out = dict(self.training)
        if self.lr is not None:
            out.update(lr_G=self.lr, lr_D=self.lr)
        if self.gamma is not None:
            out["r1_gamma"] = self.gamma
        if self.ema_kimg is not None:
            out.update(ema_kimg=self.ema_kimg, ema_beta=None)
        return out
