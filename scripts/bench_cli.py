"""Start-up time of the commands people run most (``--version``, ``--help``, ``list``, ``info``),
as a user sees it: a fresh process each time, wall-clock, median of interleaved rounds, side by
side with the floor every typer program pays, ``python -c "import typer"``.

    python scripts/bench_cli.py [--rounds 15] [--baseline DIR] [--json]

``--baseline DIR`` runs the same commands from another checkout of ganzoo as well (its package
folder first on ``PYTHONPATH``), interleaved with this one, e.g. the commit before a change:
``git worktree add /tmp/before HEAD~1 && python scripts/bench_cli.py --baseline /tmp/before``.
Every process gets ``HF_HUB_OFFLINE=1`` (nothing here may touch the network) and stdout to a pipe,
as in a script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "--version": ["--version"],
    "--help": ["--help"],
    "list": ["list"],
    "list --json -": ["list", "--json", "-"],
    "info discs": ["info", "discs"],
    "info discs --json -": ["info", "discs", "--json", "-"],
}
FLOOR = [sys.executable, "-c", "import typer"]
# Out of any checkout, so that ``python -m ganzoo`` imports the installed ganzoo (or --baseline's).
_CWD = tempfile.mkdtemp(prefix="bench_cli-")


def _time(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False, cwd=_CWD)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--baseline", type=Path, default=None, help="another ganzoo checkout, run side by side")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    sides = {"ganzoo": env}
    if args.baseline is not None:
        sides["baseline"] = {**env, "PYTHONPATH": os.pathsep.join([str(args.baseline.resolve()), env.get("PYTHONPATH", "")])}
    times: dict[str, list[float]] = {"floor": []}
    for side in sides:
        for name in COMMANDS:
            times[f"{side}: {name}"] = []
    for name, command in COMMANDS.items():  # warm-up: the page cache, .pyc files
        for side_env in sides.values():
            _time([sys.executable, "-m", "ganzoo", *command], side_env)
    _time(FLOOR, env)
    for _ in range(args.rounds):  # interleaved, so that a busy moment hits every command alike
        times["floor"].append(_time(FLOOR, env))
        for side, side_env in sides.items():
            for name, command in COMMANDS.items():
                times[f"{side}: {name}"].append(_time([sys.executable, "-m", "ganzoo", *command], side_env))
    medians = {key: statistics.median(values) for key, values in times.items()}
    result = {"python": platform.python_version(), "cpus": os.cpu_count(), "rounds": args.rounds,
              "median_s": {k: round(v, 4) for k, v in medians.items()}}  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
        return
    floor = medians["floor"]
    print(f"median of {args.rounds} interleaved rounds, fresh process each (Python {result['python']}, {result['cpus']} CPUs)")
    print(f"{'command':32} {'seconds':>8} {'over the floor':>15}" + ("  vs baseline" if args.baseline else ""))
    floor_label = 'python -c "import typer"'
    print(f"{floor_label:32} {floor:8.3f}")
    for name in COMMANDS:
        ours = medians[f"ganzoo: {name}"]
        row = f"{'ganzoo ' + name:32} {ours:8.3f} {ours - floor:+14.3f}s"
        if args.baseline is not None:
            base = medians[f"baseline: {name}"]
            row += f"  {base:8.3f} s ({base / ours:.2f}x)"
        print(row)


if __name__ == "__main__":
    main()
