"""Start-up time of `python train.py --cfg job` against a bare `import torch`.

usage (repository root):
    python experiments/bench/startup.py [--runs 7]

`--cfg job` composes and prints the config without importing the training stack
(tests/test_config.py checks which modules it imports); this measures what that saves. Each
command runs once to warm the file cache, then --runs times; the median is reported. A timing is
the machine's as much as the code's: compare numbers taken on the same machine, idle.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {
    "train.py --cfg job": [sys.executable, "train.py", "--cfg", "job"],
    "import torch": [sys.executable, "-c", "import torch"],
}


def median_seconds(cmd: list[str], runs: int) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        if i:  # the first run warms the file cache
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    result = {name: median_seconds(cmd, args.runs) for name, cmd in COMMANDS.items()}
    for name, seconds in result.items():
        print(f"{name:>20}: {seconds:.2f} s (median of {args.runs})")
    return result


if __name__ == "__main__":
    main()
