#!/usr/bin/env bash
# Issue 12, item 6: a GPT-2-shaped causal LM (GPT-2 small's size, random init) on tinyshakespeare,
# with a 50,257-token byte-level BPE vocabulary built by tokentune as its original, trained with
# and without tokenizer=trim: vocabulary, parameters, step time and peak memory, and their ratios,
# measured in one run (the two models interleaved). CPU is enough; uses the first CUDA GPU if any.
# Writes results.json and results.md beside this file. Run from the repository root; data from
# TOKENTUNE_DATA (tinyshakespeare/ and glue/), by default ../shared/data when it exists.
# Options go to run.py (see its --help), e.g. --threads 1 on a shared 2-core machine.
set -euo pipefail
if [[ -z "${TOKENTUNE_DATA:-}" && -d ../shared/data ]]; then
  TOKENTUNE_DATA="$(cd ../shared/data && pwd)"
  export TOKENTUNE_DATA
fi
exec "${PYTHON:-python}" experiments/trim_gpt2/run.py "$@"
