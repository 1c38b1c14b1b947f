#!/usr/bin/env bash
# One run of an experiment, timed from start to final metric, and its result files:
#   experiments/single.sh NAME [overrides]   ->   experiments/NAME/results.{json,md}
# NAME selects conf/experiment/NAME.yaml where there is one (demo_cpu is the plain default run).
# Run from the repository root.
set -euo pipefail
name=$1; shift
out=experiments/$name
run=outputs/experiments/$name
exp=()
[ -f "conf/experiment/$name.yaml" ] && exp=("experiment=$name")
rm -rf "$run"
/usr/bin/time -f "- command wall time: %e s" -o "$run.time" \
  python train.py "${exp[@]}" hydra.run.dir="$run" callbacks.progress_bar=none "$@"
# the report first: it names the commit, and a copied results.json would already make it dirty
python experiments/report.py "$out/results.md" "$run"
cp "$run/results.json" "$out/results.json"
cat "$run.time" >> "$out/results.md"
