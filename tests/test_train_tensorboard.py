"""TensorBoard events of a training run: written when tensorboard is installed, skipped without it."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from ganzoo.train.runner import finetune
from helpers import tiny_gan

# 16 images in minibatches of 4, a log line (tick) every 4 images: steps 4, 8, 12, 16.
SETTINGS = dict(recipe="full", kimg=0.016, batch=4, snap=0.008, tick_kimg=0.004, aug="ada", progress=False)
STEPS = [4, 8, 12, 16]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models, shared cores


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return tiny_gan(seed=3).save(tmp_path_factory.mktemp("tb") / "source")


def _data() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (torch.rand([8, 3, 16, 16], generator=gen) * 255).to(torch.uint8)


def _scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _log_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_events_hold_the_logged_losses_at_each_tick(source, tmp_path):
    pytest.importorskip("tensorboard")
    out = finetune(str(source), _data(), tmp_path / "run", **SETTINGS)
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    scalars = _scalars(out / "tensorboard")
    assert {"loss_G", "loss_D", "ada_p", "img_per_s"} <= set(scalars)
    assert "kimg" not in scalars and "time" not in scalars  # the step and the event's wall time
    lines = _log_lines(out)
    assert [round(line["kimg"] * 1000) for line in lines] == STEPS
    for tag in ("loss_G", "loss_D"):
        assert [step for step, _ in scalars[tag]] == STEPS  # step = images seen
        # the same numbers as log.jsonl (stored as float32)
        assert [value for _, value in scalars[tag]] == pytest.approx([line[tag] for line in lines], rel=1e-6)


def test_resume_drops_events_logged_after_the_snapshot(source, tmp_path):
    """A run stopped after logging past its last snapshot and resumed has one event per step."""
    pytest.importorskip("tensorboard")
    out = finetune(str(source), _data(), tmp_path / "run", **SETTINGS)
    # As if the process had been killed just before the 16-kimg snapshot: steps 12 and 16 are
    # logged, the snapshot 8 is the newest; the resumed run retrains and relogs 12 and 16.
    shutil.rmtree(out / "snapshots" / "snapshot-0000000016")
    finetune(resume=out, data=_data(), progress=False, tick_kimg=0.004)
    for tag in ("loss_G", "loss_D"):
        assert [step for step, _ in _scalars(out / "tensorboard")[tag]] == STEPS


def test_training_without_tensorboard_writes_no_events(source, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import raises ImportError
    with pytest.raises(ImportError):
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    out = finetune(str(source), _data(), tmp_path / "run", **SETTINGS)
    assert not (out / "tensorboard").exists()
    assert [round(line["kimg"] * 1000) for line in _log_lines(out)] == STEPS
    assert (out / "generator.safetensors").is_file() and (out / "config.json").is_file()
