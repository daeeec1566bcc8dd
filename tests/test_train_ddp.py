"""Data-parallel training on CPU (gloo, 2 processes) equals one process with the same chunks."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from helpers import tiny_gan

SETTINGS = dict(recipe="full", kimg=0.016, batch=4, batch_gpu=2, snap=0.008, aug="ada", p=0.3, progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, source: str, data: torch.Tensor, out: str) -> None:
    import torch.distributed as dist

    from ganzoo.train.runner import finetune

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        finetune(source, data, out, **SETTINGS)
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_match_one_process(tmp_path: Path):
    torch.set_num_threads(1)
    source = tiny_gan(seed=2).save(tmp_path / "source")
    gen = torch.Generator().manual_seed(0)
    data = (torch.rand([8, 3, 16, 16], generator=gen) * 255).to(torch.uint8)

    from ganzoo.train.runner import finetune

    single = finetune(str(source), data, tmp_path / "single", **SETTINGS)
    mp.spawn(_worker, args=(2, _free_port(), str(source), data, str(tmp_path / "ddp")), nprocs=2, join=True)
    ddp = tmp_path / "ddp"
    for name in ("generator.safetensors", "generator_raw.safetensors", "discriminator.safetensors"):
        a, b = load_file(str(single / name)), load_file(str(ddp / name))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=f"{name}: {key}")
    # Snapshots (rank 0 only) and the ADA state agree.
    assert sorted(p.name for p in (ddp / "snapshots").iterdir()) == ["snapshot-0000000000", "snapshot-0000000008",
                                                                     "snapshot-0000000016"]  # fmt: skip
    import json

    p_single = json.loads((single / "config.json").read_text())["training"]["ada_p"]
    p_ddp = json.loads((ddp / "config.json").read_text())["training"]["ada_p"]
    assert p_ddp == pytest.approx(p_single)
