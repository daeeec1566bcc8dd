"""Toy-scale studies of the engine (CPU, minutes): run by hand with ``pytest -m slow``.

The target data are procedurally generated (soft colored discs on a plain background), so the
studies need no download. What they check is what the issue's evidence asks for at toy scale:
with 32 target images and no augmentation D overfits (r_t, the ADA heuristic E[sign D(real)],
stays well above the 0.6 target; at this scale and 8 kimg about 0.8, not yet 1), while ADA
holds r_t near its target by raising p.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganzoo.train.runner import finetune
from helpers import threads_for_tests

pytestmark = pytest.mark.slow


def discs(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """``n`` uint8 images: a soft disc of random color, radius and position on a random gray."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    out = np.empty([n, 3, size, size], dtype=np.uint8)
    for i in range(n):
        cx, cy = rng.uniform(0.3, 0.7, 2) * size
        radius = rng.uniform(0.15, 0.35) * size
        mask = 1 / (1 + np.exp((np.hypot(xx - cx, yy - cy) - radius) * 2.0))
        background = rng.uniform(0.1, 0.9)
        color = rng.uniform(0, 1, 3)
        img = background * (1 - mask)[None] + color[:, None, None] * mask[None]
        out[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return torch.from_numpy(out)


def _rt_curve(out) -> list[tuple[float, float, float]]:
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [(r["kimg"], r["rt"], r.get("ada_p", 0.0)) for r in rows if "rt" in r]


def small_gan(seed: int = 0):
    """A 16x16 GAN with some capacity (64 channels per block, ~0.3M parameters)."""
    from ganzoo.checkpoint import GAN
    from ganzoo.architectures.stylegan2.networks import Discriminator, Generator

    torch.manual_seed(seed)
    kwargs = dict(channel_base=1024, channel_max=64)
    G = Generator(64, 0, 64, 16, 3, mapping_kwargs=dict(num_layers=2), synthesis_kwargs=kwargs)
    D = Discriminator(0, 16, 3, epilogue_kwargs=dict(mbstd_group_size=4), **kwargs)
    return GAN(G.eval(), None, D.eval(), config={"license": "cc-by-4.0", "source": {"made_by": "tests"}})


def ada_study(out, seed: int = 0, images: int = 32, kimg: float = 8, ada_kimg: float = 5) -> dict[str, list[tuple[float, float, float]]]:
    """Scratch training on ``images`` discs for ``kimg``, without augmentation and with ADA: the
    ``(kimg, r_t, p)`` curve of each (``scripts/study_margins.py ada`` runs it over seeds)."""
    torch.set_num_threads(threads_for_tests())
    data = discs(images, seed=seed)
    source = small_gan(seed=4 + seed)
    common = dict(recipe="scratch", kimg=kimg, batch=8, snap=kimg, tick_kimg=0.5, progress=False, seed=seed,
                  ada_kimg=ada_kimg)  # fmt: skip
    return {aug: _rt_curve(finetune(source, data, out / aug, aug=aug, **common)) for aug in ("none", "ada")}


def ada_outcome(curves: dict[str, list[tuple[float, float, float]]]) -> dict[str, float]:
    """From :func:`ada_study`'s curves: r_t without augmentation and with ADA, each averaged over
    the second half of the run, ADA's final p, and how much nearer the 0.6 target ADA's r_t is."""
    half = len(curves["none"]) // 2
    late_none, late_ada = (float(np.mean([rt for _, rt, _ in curves[k][half:]])) for k in ("none", "ada"))
    return {"rt_none": late_none, "rt_ada": late_ada, "p_final": curves["ada"][-1][2],
            "closer": abs(late_none - 0.6) - abs(late_ada - 0.6)}  # fmt: skip


def test_without_augmentation_d_overfits_and_ada_holds_rt_near_target(tmp_path):
    """ADA's mechanism (Karras et al. 2020): with few images and no augmentation D overfits
    (r_t = E[sign D(real)] well above the 0.6 target); ADA raises p while r_t is above the target,
    which holds r_t nearer the target. 32 discs, 8 kimg; each r_t averaged over the second half
    of the run (8 ticks of 0.5 kimg: one tick's r_t is a mean of 500 signs and swings by ~0.1)."""
    curves = ada_study(tmp_path, seed=0)
    print("kimg, r_t (aug none), r_t (ADA), ADA p")
    for (k, a, _), (_, b, p) in zip(curves["none"], curves["ada"]):
        print(f"{k:5.1f} {a:6.3f} {b:6.3f} {p:6.3f}")
    outcome = ada_outcome(curves)
    # Measured (scripts/study_margins.py ada, seeds 0-4 at 1 thread and 0-2 at 2 threads, with the
    # pipeline pinned to the reference's (issue 26; the study's output is in its note)): without
    # augmentation r_t 0.76-0.88; ADA's final p 0.25-0.33; |r_t - 0.6| smaller with ADA by
    # 0.050-0.24 (ADA's r_t 0.45-0.65: it now overshoots below the target on some seeds).
    assert outcome["rt_none"] > 0.65, outcome  # D tells the 32 reals apart more than the target allows
    assert outcome["p_final"] > 0.1, outcome  # ADA reacted by raising p
    assert outcome["closer"] > 0, outcome  # |r_t - 0.6| smaller with ADA


def squares(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Like :func:`discs`, with soft squares: related to discs (same colors, layout), not equal."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    out = np.empty([n, 3, size, size], dtype=np.uint8)
    for i in range(n):
        cx, cy = rng.uniform(0.3, 0.7, 2) * size
        half = rng.uniform(0.15, 0.35) * size
        dist = np.maximum(np.abs(xx - cx), np.abs(yy - cy))
        mask = 1 / (1 + np.exp((dist - half) * 2.0))
        background = rng.uniform(0.1, 0.9)
        color = rng.uniform(0, 1, 3)
        img = background * (1 - mask)[None] + color[:, None, None] * mask[None]
        out[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return torch.from_numpy(out)


def _save_folder(images: torch.Tensor, folder) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i, img in enumerate(images.permute(0, 2, 3, 1).numpy()):
        Image.fromarray(img).save(folder / f"{i:04d}.png")


def test_finetuning_fid_falls_and_scratch_learns_the_target(tmp_path):
    """Pretrain on discs, then train on 128 squares for 3 kimg, full finetuning and scratch, FID
    measured at every kimg (metrics during training, end to end).

    What holds at this toy scale, measured over seeds: full finetuning first moves away from the
    target (the first kimg of finetuning disturbs the source), then its FID falls well below that;
    scratch learns the target. Full finetuning does *not* beat scratch here (16², 3 kimg, seeds
    0-2: 0.43/1.47/0.28 against 0.35/0.41/0.23): it did only with ganzoo's augmentation pipeline
    before it matched the reference's (issue 26). The transfer advantage is shown by the 32² study
    in the README (``scripts/study_finetune_32.py``), not asserted here. No augmentation: ADA's own
    study is the test above.

    FID uses a random-weight Inception (nothing can be downloaded here): a consistent, not a
    standard, feature space; the comparison between runs is what matters.
    """
    from ganzoo.metrics.evaluate import evaluate

    torch.set_num_threads(threads_for_tests())
    source = small_gan(seed=5)
    pretrain_dir = tmp_path / "discs"
    _save_folder(discs(512, seed=1), pretrain_dir)
    pretrained = finetune(source, pretrain_dir, tmp_path / "pretrain", recipe="scratch", kimg=8, batch=8, snap=8,
                          progress=False, aug="none")  # fmt: skip
    target = tmp_path / "squares"
    _save_folder(squares(128, seed=2), target)
    common = dict(kimg=3, batch=8, snap=1, progress=False, aug="none")
    fid_options = dict(num_gen=256, allow_random_weights=True)
    full = finetune(str(pretrained), target, tmp_path / "full", recipe="full", metrics=["fid"],
                    metrics_options=fid_options, **common)  # fmt: skip
    scratch = finetune(str(pretrained), target, tmp_path / "scratch", recipe="scratch", metrics=["fid"],
                       metrics_options=fid_options, **common)  # fmt: skip

    def curve(out):
        rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        return [(r["kimg"], r["fid"]) for r in rows if "fid" in r]

    print("kimg, FID full, FID scratch")
    for (k, a), (_, b) in zip(curve(full), curve(scratch)):
        print(f"{k:4.1f} {a:8.2f} {b:8.2f}")
    start = evaluate(str(pretrained), target, metrics=["fid"], progress=False, **fid_options)["fid"]
    print(f"FID of the pretrained source on the target: {start:.2f}")
    # Measured (1 thread, random-weight Inception, 256 samples; finetune seeds 0 / 1 / 2): source
    # on the target 0.76; full at 1 kimg 2.44 / 1.99 / 2.38, its best later 0.43 / 0.68 / 0.28;
    # scratch at 3 kimg 0.35 / 0.41 / 0.23. ~8 minutes.
    full_fid = [fid for _, fid in curve(full)]
    assert min(full_fid[1:]) < full_fid[0] / 2  # finetuning's FID falls (by 2.9x-8.5x measured)
    assert curve(scratch)[-1][1] < start / 1.5  # scratch learns the target (by 1.9x-3.3x measured)
