"""The merge itself (:func:`merge`): its checks, its plan (``merge.json``, which a resumed merge
must match), its stages (each a :func:`ganzoo.finetune` run under ``OUT/stages``) and the merged
checkpoint written into ``OUT``."""

from __future__ import annotations

import copy
import json
import os
import shutil
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ganzoo import __version__
from ganzoo._io import atomic_path, atomic_write_text, check_output
from ganzoo.checkpoint import CARD_NAME, CONFIG_NAME, GAN, WEIGHT_FILES
from ganzoo.cocktail.scoring import evaluate_merge, metric_records, sample_grid, write_grid
from ganzoo.cocktail.sources import Source, load_sources, rooting_stream, union_stream
from ganzoo.cocktail.weights import make_conditional, average_gans, write_ewc_anchor
from ganzoo.errors import GanzooError
from ganzoo.streams import ProceduralImages
from ganzoo.train.options import FinetuneOptions, default_batch

METHODS = ("cocktail", "scratch", "transfer", "ewc", "freezed")
PLAN_FILE = "merge.json"
SUMMARY_FILE = "merge_summary.json"
GRID_FILE = "merge_grid.png"
STAGES = "stages"
FISHER_FILE = "ewc-fisher.safetensors"
#: :class:`~ganzoo.train.options.FinetuneOptions` fields the plan records on their own, not among
#: the engine settings (``callback``, ``progress`` and ``threads`` are not part of what a merge is).
_NOT_ENGINE = ("batch", "seed", "aug", "progress", "callback", "threads")
#: Settings each stage sets itself.
_STAGE_OWN = ("recipe", "kimg", "progress_label")


def merge(
    sources: Sequence[Any],
    out: str | os.PathLike,
    root: str | int | None = None,
    root_kimg: float = 100.0,
    merge_kimg: float = 100.0,
    *,
    options: FinetuneOptions | None = None,
    resume: bool = False,
    method: str = "cocktail",
    eval: bool = False,
    class_names: Sequence[str] | None = None,
    num_gen: int = 1000,
    eval_options: dict | None = None,
    ewc_lambda: float = 1e3,
    ewc_samples: int = 256,
    **settings: Any,
) -> Path:
    """Merges pretrained GANs into one class-conditional GAN (GAN Cocktail, or a baseline).

    Args:
        sources: the models (registry names or aliases, Hub ids, checkpoint directories,
            foreign files, or :class:`~ganzoo.checkpoint.GAN` objects); class ``k`` is
            ``sources[k]``.
        out: the output directory (a checkpoint directory in the end; see :mod:`ganzoo.cocktail`).
        root: the root model, by class name, source label or index (default: the first).
            It must be unconditional and have a discriminator.
        root_kimg: length of each rooting stage (thousands of images shown to D).
        merge_kimg: length of the union fine-tuning stage.
        options: the settings of every stage (:class:`~ganzoo.train.options.FinetuneOptions`:
            ``batch``, None: by the root's resolution; ``seed`` of everything (samples, new
            parameters, training), None: 0; ``aug``, None: ``'ada'``; ``snap``, ``lr``, ``device``,
            ``progress`` (bars and stage headers), ``callback`` (every minibatch of every stage),
            ...); ``recipe`` and ``kimg`` are each stage's own.
        resume: continue ``out`` if it holds an unfinished merge of the same plan.
        method: ``'cocktail'``, or a baseline at the same budget: ``'scratch'``,
            ``'transfer'``, ``'ewc'``, ``'freezed'``.
        eval: compute per-class and union FID/KID against samples of each source
            (:func:`~ganzoo.cocktail.scoring.evaluate_merge`) into ``config.json``, the card and
            the summary.
        class_names: class names (default: from the sources).
        num_gen: ``eval``: images per class and per source.
        eval_options: further ``evaluate_merge`` arguments (``feature_extractor``,
            ``allow_random_weights``, ``device``).
        ewc_lambda: ``ewc``: λ of the Fisher penalty.
        ewc_samples: ``ewc``: generated samples for the Fisher estimate.
        **settings: ``FinetuneOptions`` (and ``TrainingOptions``) fields, filled in over ``options``.

    Returns:
        ``out``.

    Raises:
        TypeError: a keyword that is no setting, or one each stage sets itself (``recipe``, ``kimg``).
        GanzooError: unknown method, bad sources or root, an existing ``out`` without
            ``resume``, or a plan that differs from the one ``out`` was started with.
    """
    options = _check_merge(FinetuneOptions.of(options, settings, "merge"), method, root_kimg, merge_kimg, eval, num_gen,
                           eval_options, ewc_lambda, ewc_samples)  # fmt: skip
    out = Path(out)
    if not resume:  # before the work: a missing or empty folder that takes files
        check_output(out, "dir", hint="choose another --out, or continue it with --resume")
    loaded = load_sources(sources, class_names)
    root_index = _root_of(root, loaded)
    root_gan = loaded[root_index].gan
    if options.batch is None:
        options = replace(options, batch=default_batch(root_gan.metadata.resolution))
    stages = _plan_stages(method, len(loaded), root_index, float(root_kimg), float(merge_kimg))
    plan = _plan(method, loaded, root_index, float(root_kimg), float(merge_kimg), options, stages,
                 {"lambda": float(ewc_lambda), "samples": int(ewc_samples)} if method == "ewc" else None)  # fmt: skip
    _start_or_check(out, plan)
    if _stage_done(out):
        return out
    final, rooted = _run_stages(out, stages, loaded, root_index, method, options, ewc_lambda, ewc_samples)
    summary = _summary(plan, loaded, root_index, rooted)
    _finish(out, final, loaded, root_index, plan, summary, eval, num_gen, eval_options, options.progress)
    return out


def _check_merge(options: FinetuneOptions, method: str, root_kimg: float, merge_kimg: float, evaluate: bool,
                 num_gen: int, eval_options: dict | None, ewc_lambda: float, ewc_samples: int) -> FinetuneOptions:  # fmt: skip
    """Refuses what a stage (or ``--eval``, after every stage) would refuse, before the work;
    returns ``options`` with the merge's defaults (seed 0, ``aug`` ada) and the device checked."""
    from ganzoo.train import checks

    own = sorted(set(options.keywords()) & set(_STAGE_OWN))
    if own:
        raise TypeError(f"merge() sets {', '.join(own)} itself, per stage (--method, --root-kimg, --merge-kimg)")
    if method not in METHODS:
        raise GanzooError(f"unknown merge method {method!r}; choose from {', '.join(METHODS)}")
    for flag, value in (("--root-kimg", root_kimg), ("--merge-kimg", merge_kimg)):
        checks.check_number(flag, value, low=0, open_low=True)
    aug = "ada" if options.aug is None else options.aug
    if aug not in ("ada", "fixed", "none"):
        raise GanzooError(f"--aug must be ada, fixed or none, not {aug!r}")
    if aug == "fixed" and options.p is None:
        raise GanzooError("--aug fixed needs p (the augmentation probability)")
    if evaluate and num_gen < 2:
        raise GanzooError("merge --eval: --num-gen must be at least 2")
    if evaluate:
        from ganzoo.metrics.cache import check_num_samples

        check_num_samples(num_gen)  # before stage 1, not after the training
    options = replace(options, aug=aug, seed=0 if options.seed is None else options.seed,
                      device=checks.check_device(options.device))  # fmt: skip
    options.check()
    if method == "ewc":
        checks.check_number("ewc_lambda", ewc_lambda, low=0)
        checks.check_number("ewc_samples", ewc_samples, low=1, integer=True)
    if evaluate:
        unknown = sorted(set(eval_options or {}) - {"feature_extractor", "allow_random_weights", "device"})
        if unknown:
            raise GanzooError(f"merge: eval_options {', '.join(unknown)}: use feature_extractor, allow_random_weights, device")
        ev = dict(eval_options or {})
        checks.check_extractor(str(ev.get("feature_extractor", "inception-fid")), bool(ev.get("allow_random_weights")),
                               device=checks.check_device(ev.get("device", "cpu")), progress=options.progress,
                               what="merge --eval")  # fmt: skip
    return replace(options, seed=int(options.seed))


def _root_of(root: str | int | None, sources: Sequence[Source]) -> int:
    """The index of the root among ``sources``, checked: unconditional, with a discriminator."""
    index = _root_index(root, sources)
    gan = sources[index].gan
    if gan.metadata.num_classes:
        raise GanzooError(f"merge: the root {sources[index].label} must be unconditional")
    if gan.D is None:
        raise GanzooError(f"merge: the root {sources[index].label} has no discriminator; choose another --root")
    return index


def _root_index(root: str | int | None, sources: Sequence[Source]) -> int:
    if root is None:
        return 0
    if isinstance(root, int) or (isinstance(root, str) and root.isdigit() and int(root) < len(sources)):
        index = int(root)
        if not 0 <= index < len(sources):
            raise GanzooError(f"--root {root}: there are {len(sources)} sources")
        return index
    for i, source in enumerate(sources):
        if root in (source.name, source.label):
            return i
    raise GanzooError(f"--root {root!r} is not one of the sources ({', '.join(s.name for s in sources)})")


# ----------------------------------------------------------------------------------------------
# The plan


@dataclass
class _Stage:
    name: str  # folder under OUT/stages
    kind: str  # "root" or "union"
    kimg: float
    recipe: str
    source: int | None = None  # rooting: the source index


def _plan_stages(method: str, num: int, root: int, root_kimg: float, merge_kimg: float) -> list[_Stage]:
    if method == "cocktail":
        others = [i for i in range(num) if i != root]
        stages = [_Stage(f"{n:02d}-root-{i}", "root", root_kimg, "full", i) for n, i in enumerate(others)]
        return stages + [_Stage(f"{len(others):02d}-merge", "union", merge_kimg, "full")]
    budget = (num - 1) * root_kimg + merge_kimg  # the images cocktail shows D in both stages
    recipe = {"scratch": "scratch", "transfer": "full", "ewc": "full", "freezed": "freezed"}[method]
    return [_Stage(f"00-{method}", "union", budget, recipe)]


def _plan(method: str, sources: Sequence[Source], root_index: int, root_kimg: float, merge_kimg: float,
          options: FinetuneOptions, stages: Sequence[_Stage], ewc: dict | None) -> dict:  # fmt: skip
    """What ``merge.json`` records: everything that makes the merge what it is."""
    engine = {k: v for k, v in sorted(options.keywords().items()) if k not in _NOT_ENGINE}
    return {
        "method": method, "sources": [s.label for s in sources], "fingerprints": [s.fingerprint for s in sources],
        "class_names": [s.name for s in sources], "root": root_index, "root_kimg": root_kimg, "merge_kimg": merge_kimg,
        "batch": options.batch, "seed": options.seed, "aug": options.aug, "engine": engine, "ewc": ewc,
        "stages": [{"name": s.name, "kind": s.kind, "kimg": s.kimg, "recipe": s.recipe, "source": s.source} for s in stages],
        "ganzoo_version": __version__,
    }  # fmt: skip


#: The flag of each plan entry (what a resumed merge must be given as it was started).
_PLAN_FLAGS = {"method": "--method", "sources": "SOURCES", "fingerprints": "SOURCES (other weights)",
               "class_names": "--class-names", "root": "--root", "root_kimg": "--root-kimg", "merge_kimg": "--merge-kimg",
               "batch": "--batch", "seed": "--seed", "aug": "--aug", "ewc": "ewc_lambda/ewc_samples"}  # fmt: skip
#: Engine settings a resumed merge may change (they change where and how it runs, not what it is).
_ENGINE_MAY_CHANGE = ("device", "tick_kimg", "keep_snapshots")
#: The default of each engine setting as ``merge.json`` holds it: a setting given at its default
#: is the same merge as one not given.
_ENGINE_DEFAULTS = json.loads(json.dumps({f.name: getattr(FinetuneOptions(), f.name) for f in fields(FinetuneOptions)
                                          if f.name not in ("callback", "training")}))  # fmt: skip


def _plan_differences(plan: dict, recorded: dict) -> list[str]:
    """``FLAG VALUE (the merge's: VALUE)`` for each setting of ``plan`` that differs from the
    recorded one (the stages only when nothing else explains them)."""

    def shown(value: Any) -> str:
        return f"{value:g}" if isinstance(value, float) else str(value)

    out = []
    for key, value in plan.items():
        theirs = recorded.get(key)
        if key in ("ganzoo_version", "stages"):
            continue
        if key == "engine":
            mine_e = {k: v for k, v in (value or {}).items() if k not in _ENGINE_MAY_CHANGE}
            theirs_e = {k: v for k, v in (theirs or {}).items() if k not in _ENGINE_MAY_CHANGE}
            for name in sorted(set(mine_e) | set(theirs_e)):
                mine_v, theirs_v = (e.get(name, _ENGINE_DEFAULTS.get(name)) for e in (mine_e, theirs_e))
                if mine_v != theirs_v:
                    out.append(f"{name} {shown(mine_v)} (the merge's: {shown(theirs_v)})")
            continue
        if value == theirs:
            continue
        flag = _PLAN_FLAGS.get(key, key)
        out.append(flag if isinstance(value, (list, dict)) else f"{flag} {shown(value)} (the merge's: {shown(theirs)})")
    if not out and plan.get("stages") != recorded.get("stages"):
        out.append("its stages")
    return out


def _start_or_check(out: Path, plan: dict) -> None:
    """Writes the plan of a new merge, or checks that an existing one is the same merge."""
    plan_path = out / PLAN_FILE
    if plan_path.is_file():
        recorded = json.loads(plan_path.read_text(encoding="utf-8"))
        differ = _plan_differences(json.loads(json.dumps(plan)), recorded)
        if differ:
            raise GanzooError(f"{out}: cannot resume with {', '.join(differ)}: it was started as another merge; "
                              "resume it with its own settings, or use another --out")  # fmt: skip
        return
    if out.exists() and any(out.iterdir()):
        raise GanzooError(f"{out}: not a merge directory (no {PLAN_FILE})")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plan_path, json.dumps(plan, sort_keys=True, indent=2) + "\n")




# ----------------------------------------------------------------------------------------------
# The stages


def _run_stages(out: Path, stages: Sequence[_Stage], sources: Sequence[Source], root_index: int, method: str,
                options: FinetuneOptions, ewc_lambda: float, ewc_samples: int) -> tuple[GAN, dict[int, GAN]]:  # fmt: skip
    """Runs (or continues, or skips) every stage in turn; returns the last stage's checkpoint
    and the rooted GANs by source index."""
    names = [s.name for s in sources]
    root_gan = sources[root_index].gan
    res, channels = root_gan.metadata.resolution, root_gan.metadata.channels
    device = str(options.device)  # the sources stay on the CPU; their samplers run here
    options = replace(options, resume_hint=f"the same merge command and --resume (into {out})")
    stage_dir = out / STAGES
    stage_dir.mkdir(exist_ok=True)
    rooted: dict[int, GAN] = {}
    final: GAN | None = None
    for number, stage in enumerate(stages, 1):
        path = stage_dir / stage.name
        what = f"rooting {names[root_index]} -> {names[stage.source]}" if stage.kind == "root" else f"{method}: union of {', '.join(names)}"
        _say(options.progress, f"stage {number}/{len(stages)}: {what} ({stage.kimg:g} kimg)")
        stage_options = replace(options, recipe=stage.recipe, kimg=stage.kimg, progress_label=f"merge stage {number}/{len(stages)}")
        if stage.kind == "root":
            data = rooting_stream(sources[stage.source], options.seed, res, channels, device)
            rooted[stage.source] = _run_stage(path, lambda: root_gan, data, stage_options)
            continue
        data = union_stream(sources, options.seed, res, channels, device)
        if method == "ewc":
            stage_options = _with_ewc_anchor(stage_options, stage_dir / FISHER_FILE, root_gan, names, ewc_lambda, ewc_samples)

        def start() -> GAN:
            base = average_gans([root_gan, *(rooted[i] for i in sorted(rooted))]) if method == "cocktail" else root_gan
            return make_conditional(base, names, options.seed)

        final = _run_stage(path, start, data, stage_options)
    return final, rooted


def _with_ewc_anchor(options: FinetuneOptions, fisher_path: Path, root_gan: GAN, names: Sequence[str],
                     ewc_lambda: float, ewc_samples: int) -> FinetuneOptions:  # fmt: skip
    """``options`` with EWC's penalty: the anchor (the conditional root) and its Fisher, written
    once into ``fisher_path``."""
    if not fisher_path.is_file():
        write_ewc_anchor(fisher_path, root_gan, make_conditional(root_gan, names, options.seed), ewc_samples, options.seed)
    penalty = {"penalty_file": str(fisher_path.resolve()), "penalty_weight": float(ewc_lambda)}
    return replace(options, training={**options.training, **penalty})


def _stage_done(path: Path) -> bool:
    return (path / CONFIG_NAME).is_file()  # finetune writes OUT/config.json last


def _run_stage(path: Path, source: Callable[[], GAN], data: ProceduralImages, options: FinetuneOptions) -> GAN:
    """Runs (or continues, or skips) one finetune stage; returns its final checkpoint."""
    from ganzoo.train.rundir import latest_snapshot
    from ganzoo.train.runner import finetune

    if not _stage_done(path):
        if latest_snapshot(path) is not None:
            # A resumed run keeps its settings: only where and how it runs are given.
            kept = FinetuneOptions(progress=options.progress, progress_label=options.progress_label,
                                   callback=options.callback, device=options.device, resume_hint=options.resume_hint,
                                   tick_kimg=options.tick_kimg, keep_snapshots=options.keep_snapshots)  # fmt: skip
            finetune(resume=path, data=data, options=kept)
        else:
            shutil.rmtree(path, ignore_errors=True)  # killed before its first snapshot: nothing to keep
            finetune(source(), data, path, options=options)
    return GAN.load(path)


def _distances(root: GAN, sources: Sequence[Source], rooted: dict[int, GAN], root_index: int) -> dict[str, dict]:
    from ganzoo.analysis import distance

    out = {}
    for i, source in enumerate(sources):
        if i == root_index:
            continue
        row: dict[str, Any] = {}
        try:
            row["d(r,i)"] = distance(root, source.gan)["mean"]
        except GanzooError as exc:  # another architecture: no weight-space distance to the root
            row["d(r,i)"] = None
            row["note"] = f"d(r, i) undefined: {exc}"
        if i in rooted:
            row["d(r,r->i)"] = distance(root, rooted[i])["mean"]
        out[source.name] = row
    return out


def _summary(plan: dict, sources: Sequence[Source], root_index: int, rooted: dict[int, GAN]) -> dict:
    """``merge_summary.json`` before ``--eval``: classes, stages and weight distances to the root."""
    names = [s.name for s in sources]
    root = sources[root_index].gan
    return {
        "method": plan["method"], "classes": names, "sources": [s.label for s in sources], "root": names[root_index],
        "stages": plan["stages"], "distances": _distances(root, sources, rooted, root_index) if rooted else {},
    }  # fmt: skip


def _say(progress: bool, text: str) -> None:
    if progress:
        from ganzoo._console import note

        note(text)


def _finish(out: Path, final: GAN, sources: Sequence[Source], root_index: int, plan: dict, summary: dict,
            evaluate: bool, num_gen: int, eval_options: dict | None, progress: bool) -> None:  # fmt: skip
    """Writes the merged checkpoint into ``out`` (config.json last), its summary, grid and card."""
    from ganzoo.modelcard import render_card

    config = copy.deepcopy(final.config)
    stage_lineage = config.get("lineage") or []
    steps = [{"stage": s["name"], "kind": s["kind"], "kimg": s["kimg"], "recipe": s["recipe"],
              "source": None if s["source"] is None else sources[s["source"]].label} for s in plan["stages"]]  # fmt: skip
    config["lineage"] = list(copy.deepcopy(sources[root_index].gan.config.get("lineage") or [])) + [{
        "parent": ", ".join(s.label for s in sources), "recipe": f"merge:{plan['method']}", "operation": "merge",
        "method": plan["method"], "sources": [s.label for s in sources], "class_names": [s.name for s in sources],
        "root": sources[root_index].label, "root_kimg": plan["root_kimg"], "merge_kimg": plan["merge_kimg"],
        "stages": steps, "batch": plan["batch"], "seed": plan["seed"], "aug": plan["aug"],
        "final_stage": stage_lineage[-1] if stage_lineage else None,
    }]  # fmt: skip
    config["class_names"] = [s.name for s in sources]
    config["source"] = {"merge": [s.label for s in sources]}
    config["license"] = sources[root_index].gan.config.get("license", "unknown")
    config.pop("metrics", None)
    if evaluate:
        _say(progress, f"evaluating: FID/KID of each class against {num_gen} samples of each source")
        evaluation = evaluate_merge(final, sources, num_gen=num_gen, seed=plan["seed"], progress=progress, **(eval_options or {}))
        summary["eval"] = evaluation
        config["metrics"] = metric_records(evaluation)
        config["merge_eval"] = evaluation
    gan = GAN(final.G_ema, final.G, final.D, config=config)
    atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, sort_keys=True, indent=2) + "\n")
    write_grid(sample_grid(gan, seed=plan["seed"]), out / GRID_FILE)
    # The checkpoint files go into OUT beside the plan and stages, so they are written one by
    # one (each atomically) through a complete copy; config.json, which marks OUT complete, last.
    tmp_dir = out / f".{CONFIG_NAME}.checkpoint.tmp"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    gan.save(tmp_dir, card=str(render_card(gan.config, name=str(out))))  # `ganzoo push` renders it for its repo
    for name in [*WEIGHT_FILES.values(), CARD_NAME, CONFIG_NAME]:
        if (tmp_dir / name).is_file():
            with atomic_path(out / name) as target:
                shutil.copyfile(tmp_dir / name, target)
    shutil.rmtree(tmp_dir, ignore_errors=True)
