"""``scripts/gpu_check.py --dry-run``: the prepared GPU check runs end to end on CPU with tiny
configs, so it cannot rot between the rare lent devices (issue 30). The references are not part
of ganzoo and not in CI: the dry run times ganzoo's side of every part and says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


def test_gpu_check_dry_run_runs_every_part_and_writes_the_tables(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(tmp_path), "--budget", "120"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["environment"]["dry_run"] and report["environment"]["device"] == "cpu"
    parts = report["parts"]
    assert list(parts) == ["exactness", "train_stylegan2", "train_stylegan3", "train_biggan", "generate"]
    assert all(part["status"] == "ok" for part in parts.values()), {n: p.get("error") for n, p in parts.items()}
    assert parts["exactness"]["rows"][0]["ok"] and "passed" in parts["exactness"]["rows"][0]["result"]
    for name in ("train_stylegan2", "train_stylegan3", "train_biggan"):
        (row,) = parts[name]["rows"]  # ganzoo eager alone: no reference given, no compiling on CPU
        assert row["candidate"] == "ganzoo eager" and row["s_per_kimg"] > 0 and row["rounds"] == 1
        assert "ganzoo alone" in parts[name]["note"]
    assert [row["img_per_s"] > 0 for row in parts["generate"]["rows"]] == [True, True]
    table = (tmp_path / "gpu_check.md").read_text()
    assert "dry run" in table and "| candidate | rounds |" in table and "**train_biggan** (ok" in table


def test_gpu_check_refuses_what_it_cannot_do(tmp_path):
    bad = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(tmp_path), "--parts", "warp"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 1 and "unknown warp" in bad.stderr and "Traceback" not in bad.stderr
    if not __import__("torch").cuda.is_available():
        gpu = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
        assert gpu.returncode == 1 and "no CUDA device here" in gpu.stderr
