#!/usr/bin/env bash
# The README's `make train` result: the offline default (pretrained MiniLM, bundled demo set, CPU).
set -euo pipefail
run=outputs/experiments/demo_cpu
rm -rf "$run"
python train.py hydra.run.dir="$run" callbacks.progress_bar=none "$@"
cp "$run/results.json" experiments/demo_cpu/results.json
python experiments/report.py experiments/demo_cpu/results.md "$run"
