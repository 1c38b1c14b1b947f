#!/usr/bin/env bash
# The headline numbers on an offline GPU node, from the repository root:   bash bundle/run.sh OUT
# (bundle/ is what `make bundle` wrote; python3 must be the node's CUDA torch). Installs the
# bundle's wheels into a temporary prefix, then runs three steps in order, each writing its results
# into OUT as soon as it ends, so a run cut short still returns what finished:
#   1. bench.tgz     throughput: HF Trainer with run_glue defaults, the tuned Trainer, tokentune
#                    trainer=gpu (BERT-base size, batch 32); peak memory per fine-tuning method
#   2. fast.tgz      time to accuracy: experiment=minilm_sst2_fast, the whole command timed, alone
#   3. accuracy.tgz  MiniLM, full SST-2, 3 epochs: full, adapter, lora, prefix (each its default
#                    rate) and full with tokenizer=bpe32k (FVT), as parallel processes on the one
#                    GPU; each run's results.json and GLUE-format test predictions (SST2.tsv)
# and logs.tgz, summary.json, summary.md: 6 files. `make ingest OUT=...` turns them into the
# committed result files. Each step has a time limit (TT_LIMITS, seconds: bench fast accuracy).
# TT_DRY=1 is the CPU dry run of tests/experiments/test_gpu_node.py: tiny model, 1 step (on its 16 rows).
set -uo pipefail
# eager_on_crash NAME CMD...: CMD (a compiled training run), and once more with model.compile=null
# when a signal killed it (a crash inside compiled code: SIGSEGV, SIGABRT, ...), within the same
# step's time; status/eager-NAME.json records it for summary.md. A Python error is not retried
# (eager would fail the same way), nor SIGTERM/SIGINT/SIGKILL, which come from the step's timeout.
eager_on_crash() {
  local name=$1 rc sig
  shift
  "$@"; rc=$?
  if [ "$rc" -gt 128 ] && [ "$rc" -lt 160 ]; then
    sig=SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))
    case $sig in SIGTERM|SIGINT|SIGKILL) return "$rc" ;; esac
    echo "run.sh: $name died of $sig while compiled; once more eager (model.compile=null)"
    printf '{"run": "%s", "signal": "%s"}\n' "$name" "$sig" > "$TT_WORK/status/eager-${name//\//-}.json"
    "$@" model.compile=null; rc=$?
  fi
  return "$rc"
}
if [ "${1:-}" = --step ]; then  # one step, run by the script itself under `timeout`
  step=$2
  if [ -n "${TT_DRY:-}" ]; then
    bench_args=(--device cpu --size tiny --steps 1 --warmup 1)
    memory_args=("${bench_args[@]}")
    train_args=(model=bert_tiny trainer=cpu trainer.max_epochs=1 trainer.limit_train_batches=0.5 trainer.limit_val_batches=1
                data.batch_size=8 tokenizer.vocab_size=300)
  else
    bench_args=(--steps 200)  # after 100 warm-up steps: steady state, and time left for step 3
    # peak memory needs few steps; eager, so that no method's number includes CUDA-graph pools
    memory_args=(--warmup 10 --steps 40 model.compile=null)
    train_args=()
  fi
  common=(callbacks.progress_bar=none logger=csv)
  res=$TT_WORK/results
  case $step in
    bench)  # the memory table first: eager and short, it is the part that cannot get stuck compiling
      "$TT_PY" experiments/bench/bench.py --out "$res/bench" --setups tokentune \
        --methods full,adapter,lora,prefix --name memory "${memory_args[@]}"; rc=$?
      "$TT_PY" experiments/bench/bench.py --out "$res/bench" "${bench_args[@]}" || rc=1
      exit $rc ;;
    fast)  # start to final metric, alone on the GPU
      eager_on_crash fast "$TT_PY" train.py experiment=minilm_sst2_fast hydra.run.dir="$res/fast" "${common[@]}" \
        "${train_args[@]}" ;;
    accuracy/*)  # one accuracy run; an unlabelled test split gets GLUE-format predictions (SST2.tsv)
      dir=$res/$step
      eager_on_crash "$step" "$TT_PY" train.py experiment=minilm_sst2 hydra.run.dir="$dir" "${@:3}" "${common[@]}" \
        "${train_args[@]}" ;;
    accuracy)  # five runs side by side: small models leave the GPU mostly idle
      pids=() rc=0
      for m in full adapter lora prefix; do
        # the experiment's rate is full fine-tuning's: each PEFT method trains at its own default
        bash "$0" --step "accuracy/$m" finetune="$m" 'optimizer.lr=${finetune.lr}' > "$TT_WORK/logs/accuracy_$m.log" 2>&1 &
        pids+=($!)
      done
      bash "$0" --step accuracy/bpe32k tokenizer=bpe32k > "$TT_WORK/logs/accuracy_bpe32k.log" 2>&1 &
      pids+=($!)
      for p in "${pids[@]}"; do wait "$p" || rc=1; done
      exit $rc ;;
  esac
  exit
fi

[ $# -eq 1 ] || { echo "usage: bash $0 OUT   (from the repository root)" >&2; exit 2; }
[ -f train.py ] && [ -d src/tokentune ] || { echo "error: run from the tokentune repository root" >&2; exit 2; }
bundle=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1" && out=$(cd "$1" && pwd)
export TT_PY=${PYTHON:-python3} TT_WORK=$(mktemp -d)
trap 'rm -rf "$TT_WORK"' EXIT
read -r t_bench t_fast t_acc <<< "${TT_LIMITS:-180 120 240}"

"$TT_PY" -m pip install -q --no-index --no-deps --no-compile --target "$TT_WORK/site" "$bundle"/wheels/*.whl \
  || { echo "error: installing $bundle/wheels failed" >&2; exit 1; }
# pkgs/ holds the fp16 MiniLM as the package the configs name; the repository's src/ is tokentune
export PYTHONPATH=$TT_WORK/site:$bundle/pkgs:$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export GLUE_DIR=$bundle/glue TOKENTUNE_CACHE=$TT_WORK/cache TOKENTUNE_COMMIT=$(cat "$bundle/commit")
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
mkdir -p "$TT_WORK/logs" "$TT_WORK/results" "$TT_WORK/status"
"$TT_PY" - > "$TT_WORK/status/node.json" <<'PY'
import json, hydra, omegaconf
from tokentune.run.provenance import environment
env = environment()
print(json.dumps({"imports": {"hydra": hydra.__file__, "omegaconf": omegaconf.__file__},
                  "device": env["device"], "environment": env}))
PY

run_step() {  # run_step NAME LIMIT: the step under its time limit, then its results into OUT
  local start=${EPOCHREALTIME/./} rc ms
  timeout --kill-after=10 "$2" bash "$0" --step "$1" > "$TT_WORK/logs/$1.log" 2>&1; rc=$?
  ms=$(( (${EPOCHREALTIME/./} - start) / 1000 ))
  printf '{"rc": %d, "seconds": %d.%03d, "limit": %d}\n' "$rc" $((ms / 1000)) $((ms % 1000)) "$2" \
    > "$TT_WORK/status/$1.json"
  echo "run.sh: $1: exit $rc after $((ms / 1000)) s (limit $2 s)"
  # each file whole or not at all: written beside, then renamed. Checkpoints and merged models
  # stay behind (hundreds of MB; results.json and the predictions are what is kept)
  mkdir -p "$TT_WORK/results/$1"
  tar -czf "$out/.$1.tgz" -C "$TT_WORK/results" --exclude=checkpoints --exclude=merged "$1" \
    && mv "$out/.$1.tgz" "$out/$1.tgz"
  tar -czf "$out/.logs.tgz" -C "$TT_WORK/logs" . && mv "$out/.logs.tgz" "$out/logs.tgz"
  "$TT_PY" experiments/gpu_node/summarize.py "$TT_WORK" "$out"
}
run_step bench "$t_bench"
run_step fast "$t_fast"
run_step accuracy "$t_acc"
cat "$out/summary.md"
