#!/usr/bin/env bash
# Issue 12 evidence (CPU is enough): MiniLM on SST-2 with its own vocabulary and with
# tokenizer=trim over every split's text, same seed and settings. The trim is exact on that text,
# so the two runs should end at the same dev accuracy with fewer parameters and a smaller checkpoint.
# 2,000 training rows, 1 epoch: the comparison, not the best accuracy. Run from the repository root.
set -euo pipefail
common=(model=minilm task=sst2 data.max_train_examples=2000 trainer.max_epochs=1 data.batch_size=32
        test=false callbacks.progress_bar=none seed=42)
out=outputs/experiments/trim_sst2
rm -rf "$out"
python train.py "${common[@]}" tokenizer=pretrained hydra.run.dir="$out/pretrained"
python train.py "${common[@]}" tokenizer=trim 'tokenizer.corpus.splits=[validation,test]' hydra.run.dir="$out/trim"
python experiments/report.py experiments/trim_sst2/results.md "$out/pretrained" "$out/trim"
python - "$out" <<'PY'
import json, sys
from pathlib import Path
runs = {n: json.loads((Path(sys.argv[1]) / n / "results.json").read_text()) for n in ("pretrained", "trim")}
Path("experiments/trim_sst2/results.json").write_text(json.dumps(runs, indent=2) + "\n")
PY
