#!/usr/bin/env bash
# The README's `make train` result: the offline default (pretrained MiniLM, bundled demo set, CPU).
exec experiments/single.sh demo_cpu "$@"
