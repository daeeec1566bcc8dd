"""Packaging: the wheel carries the registry, card templates and the bundled starter zoo, not only
an editable checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import torch

from ganzoo.architectures.stylegan2.networks import _block_dtype

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_registry_and_cards(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("ganzoo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    registry = sorted(p.name for p in (ROOT / "registry").glob("*.toml"))
    cards = sorted(p.name for p in (ROOT / "cards").iterdir() if p.is_file() and p.suffix != ".py")
    assert registry and cards
    for name in registry:
        assert f"ganzoo/_registry/{name}" in names
    for name in cards:
        assert f"ganzoo/_cards/{name}" in names
    bundled = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "ganzoo" / "bundled").glob("*/*") if p.is_file())
    assert any(n.endswith("/generator.safetensors") for n in bundled)
    for name in bundled:
        assert name in names  # the starter zoo: weights, config.json, samples.png
    assert "ganzoo/architectures/stylegan2/networks.py" in names and "ganzoo/readers/safe_pickle.py" in names
    assert not any(n.startswith(("tests/", "scripts/")) for n in names)


def test_fp16_only_on_cuda():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert _block_dtype(True, False, cuda) == torch.float16
    assert _block_dtype(True, True, cuda) == torch.float32  # force_fp32
    assert _block_dtype(True, False, cpu) == torch.float32  # never fp16 on CPU
    assert _block_dtype(False, False, cuda) == torch.float32
