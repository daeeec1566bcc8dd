"""``torchrun --nproc_per_node 2 -m ganzoo finetune ...`` on CPU (gloo) equals the same command in
one process: the real launcher, the real CLI, the environment torchrun sets (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR/PORT)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import random_images, tiny_gan

# 16 images in minibatches of 4, snapshots at 8 and 16. --batch-gpu 2 in both runs: a chunk is
# the unit of randomness (its latents, noise and augmentations are drawn from its own seed), and
# the default chunk is batch / processes, so only an explicit chunk size gives equal runs.
ARGS = ["--recipe", "full", "--kimg", "0.016", "--batch", "4", "--batch-gpu", "2", "--snap", "0.008", "--seed", "0"]
WEIGHTS = ("generator.safetensors", "generator_raw.safetensors", "discriminator.safetensors", "training_state.safetensors")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)  # the single-process run must not see a stray launcher environment
    return env


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_torchrun_two_gloo_processes_match_one_process(tmp_path: Path):
    tiny_gan(seed=2).save(tmp_path / "src")
    random_images(tmp_path / "imgs", 8, seed=0)
    finetune = ["-m", "ganzoo", "finetune", "src", "--data", "imgs", *ARGS]

    _run([sys.executable, *finetune, "--out", "single"], tmp_path)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(_free_port())]  # fmt: skip
    _run([*torchrun, *finetune, "--out", "ddp"], tmp_path)

    single, ddp = tmp_path / "single", tmp_path / "ddp"
    # Rank 0 alone writes: one run directory, the same files as one process (TensorBoard's event
    # file names carry the host and pid), no temporaries, each log line once.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "imgs", "single", "src"]
    assert [f for f in _files(ddp) if not f.startswith("tensorboard/")] == [f for f in _files(single) if not f.startswith("tensorboard/")]
    assert sorted(p.name for p in (ddp / "snapshots").iterdir()) == ["snapshot-0000000000", "snapshot-0000000008",
                                                                     "snapshot-0000000016"]  # fmt: skip
    assert not [f for f in _files(ddp) if Path(f).name.startswith(".") or f.endswith(".tmp")]
    if (single / "tensorboard").exists():
        assert len(list((ddp / "tensorboard").iterdir())) == 1  # one event file, not one per rank
    log_single = [json.loads(line) for line in (single / "log.jsonl").read_text().splitlines()]
    log_ddp = [json.loads(line) for line in (ddp / "log.jsonl").read_text().splitlines()]
    assert [line["kimg"] for line in log_ddp] == [line["kimg"] for line in log_single] == [0.016]

    # The same training, up to float summation order.
    for name in WEIGHTS:
        a, b = load_file(str(single / name)), load_file(str(ddp / name))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=f"{name}: {key}")
    config_single, config_ddp = (json.loads((d / "config.json").read_text()) for d in (single, ddp))
    assert config_ddp["training"]["ada_p"] == pytest.approx(config_single["training"]["ada_p"])
    assert config_ddp["training"]["kimg"] == config_single["training"]["kimg"] == 0.016
    for key in ("loss_G", "loss_D", "ada_p"):
        assert log_ddp[0][key] == pytest.approx(log_single[0][key], rel=1e-5, abs=1e-6)
