"""Training speed by thread count, on a quiet machine and beside other jobs (issue 32).

Each measurement is a fresh process that finetunes the bundled ``discs`` starter (32², batch 16,
no augmentation) for ``--kimg`` on random images and reports the img/s of its last log line (the
whole loop, after the start snapshot). ``--burners B`` runs B other jobs beside it: processes that
each keep one core busy (a numpy matrix product in a loop, one thread), started ``--settle``
seconds before the measurements so that the load average has seen them, as it has on a machine
that has been busy for a while. Thread settings: a count, ``auto`` (ganzoo's default: the cores
idle at start, :func:`ganzoo._threads.choose_threads`) and ``N-passive`` (N threads with
``OMP_WAIT_POLICY=PASSIVE``: OpenMP workers sleep instead of spinning while they wait).

    python scripts/bench_threads.py --burners 0 1 2 --threads 1 2 auto 2-passive --json bench_threads.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

_CHILD = r"""
import json, os, sys, time
import torch
import ganzoo
from ganzoo._threads import choose_threads
from ganzoo.train.options import FinetuneOptions

kimg, setting, out = float(sys.argv[1]), sys.argv[2], sys.argv[3]
count = None if setting == "auto" else int(setting.split("-")[0])
threads = choose_threads(count)
images = (torch.rand([64, 3, 32, 32], generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
options = FinetuneOptions(kimg=kimg, batch=16, aug="none", snap=1000.0, tick_kimg=1000.0, progress=False, threads=threads)
ganzoo.finetune("discs", images, out, options=options)
with open(os.path.join(out, "log.jsonl")) as f:
    last = [json.loads(line) for line in f if line.strip()][-1]
print(json.dumps({"img_per_s": last["img_per_s"], "threads": threads.count, "why": threads.reason}))
"""

_BURNER = r"""
import os
os.environ["OMP_NUM_THREADS"] = "1"
import numpy as np
a = np.random.rand(256, 256)
while True:
    a = (a @ a) / 256.0
"""


def _measure(kimg: float, setting: str, env: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        child_env = dict(env)
        if setting.endswith("-passive"):
            child_env["OMP_WAIT_POLICY"] = "PASSIVE"
        done = subprocess.run([sys.executable, "-c", _CHILD, str(kimg), setting, os.path.join(tmp, "run")],
                              capture_output=True, text=True, env=child_env, check=False)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burners", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", nargs="+", default=["1", "2", "auto", "2-passive"])
    parser.add_argument("--kimg", type=float, default=0.256)
    parser.add_argument("--settle", type=float, default=60.0, help="seconds the burners run before measuring")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("GANZOO_THREADS", None)
    rows = []
    for burners in args.burners:
        jobs = [subprocess.Popen([sys.executable, "-c", _BURNER]) for _ in range(burners)]
        try:
            if burners:
                time.sleep(args.settle)
            for setting in args.threads:
                result = _measure(args.kimg, setting, env)
                row = {"burners": burners, "setting": setting, "load": os.getloadavg()[0], **result}
                rows.append(row)
                print(f"burners {burners}  {setting:>9}  threads {result['threads']}  {result['img_per_s']:7.1f} img/s"
                      f"  (load {row['load']:.2f}; {result['why']})", flush=True)  # fmt: skip
        finally:
            for job in jobs:
                job.kill()
            for job in jobs:
                job.wait()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"kimg": args.kimg, "cores": len(os.sched_getaffinity(0)), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
