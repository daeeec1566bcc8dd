"""The same command gives the same bytes: files ganzoo writes are byte-identical for identical
content, from one process to the next (safetensors headers, exported state dicts, resumed runs)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")

# Writes every kind of file below OUT (argv[1]); each is written more than once where a second
# copy can be compared in the same process.
SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import numpy as np
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[2])  # tests/, for helpers
    from helpers import tiny_gan

    from ganzoo.conversion import export
    from ganzoo.metrics.cache import FeatureSet, write_feature_file
    from ganzoo.train.runner import finetune

    out = Path(sys.argv[1])
    gan = tiny_gan(seed=3)
    for i in range(3):
        gan.save(out / f"ckpt{i}")
    export(out / "ckpt0", out / "export0.pt")
    export(out / "ckpt0", out / "export1.pt")
    features = FeatureSet(np.arange(12, dtype=np.float32).reshape(3, 4), key={"b": 1, "a": [2, 3]})
    features.skipped = ["x.png"]
    for i in range(2):
        write_feature_file(out / f"features{i}.safetensors", features)
    data = (torch.rand([8, 3, 16, 16], generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    settings = dict(recipe="full", batch=4, seed=0, snap=0.008, progress=False)
    finetune(gan, data, out / "full", kimg=0.016, **settings)
    finetune(gan, data, out / "half", kimg=0.008, **settings)
    finetune(resume=out / "half", data=data, kimg=0.016, progress=False)
    """
)

VOLATILE = ("log.jsonl", "tensorboard")  # wall-clock times by design


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part in VOLATILE for part in p.relative_to(root).parts)}  # fmt: skip


def _run(out: Path, hash_seed: str) -> dict[str, str]:
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out), str(tests)], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return _digests(out)


def test_files_are_byte_identical_across_processes_and_resume(tmp_path):
    first = _run(tmp_path / "a", "1")
    second = _run(tmp_path / "b", "2")
    assert first == second, sorted(k for k in first if first[k] != second.get(k))
    # Within one process: the same content gives the same bytes every time it is written.
    for name in ("generator.safetensors", "discriminator.safetensors", "config.json"):
        assert first[f"ckpt0/{name}"] == first[f"ckpt1/{name}"] == first[f"ckpt2/{name}"], name
    assert first["export0.pt"] == first["export1.pt"]
    assert first["features0.safetensors"] == first["features1.safetensors"]
    # A resumed run and an uninterrupted one: the same files, byte for byte (sha256 in config.json too).
    # (run.json is the run's own record: the half run was started for 0.008 kimg, then extended.)
    final = [k[len("full/"):] for k in first if k.startswith("full/") and not k.startswith("full/snapshots/")
             and k != "full/run.json"]
    assert "generator.safetensors" in final and "config.json" in final
    for name in final:
        assert first[f"full/{name}"] == first[f"half/{name}"], name
    full_config = json.loads((tmp_path / "a" / "full" / "config.json").read_text())
    half_config = json.loads((tmp_path / "a" / "half" / "config.json").read_text())
    assert full_config["files"] == half_config["files"]


def test_safetensors_metadata_is_written_in_sorted_key_order(tmp_path):
    import numpy as np

    from ganzoo._safetensors_write import save_file

    metadata = {f"k{i}": str(i) for i in (5, 1, 9, 3, 7, 0, 2)}
    tensors = {"b": np.ones(3, np.float32), "a": np.zeros([2, 2], np.float16)}
    blobs = set()
    for i in range(6):  # safetensors orders a metadata dict differently for each call
        save_file(tensors, tmp_path / f"{i}.safetensors", metadata=metadata)
        blobs.add((tmp_path / f"{i}.safetensors").read_bytes())
    assert len(blobs) == 1
    blob = blobs.pop()
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    assert list(header["__metadata__"]) == sorted(metadata)
    assert size % 8 == 0
    from safetensors.numpy import load_file

    loaded = load_file(str(tmp_path / "0.safetensors"))
    assert np.array_equal(loaded["b"], tensors["b"]) and np.array_equal(loaded["a"], tensors["a"])
