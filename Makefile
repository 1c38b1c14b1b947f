# `make train` and `make test` work as the first command on a fresh machine: each creates
# .venv and installs what it needs when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
# CPU-only machines get the CPU build of torch (PyPI's default Linux wheel carries GBs of CUDA).
# On a GPU machine this is empty and PyPI's CUDA build is installed.
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,https://download.pytorch.org/whl/cpu)
# Real data for the tests: GLUE_DIR, else ../shared/data when this checkout has it.
SHARED_DATA := $(abspath ../shared/data)
export TOKENTUNE_DATA ?= $(if $(wildcard $(SHARED_DATA)/glue),$(SHARED_DATA),$(abspath data))

.PHONY: train test setup clean docker-build lock bench experiment

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q --retries 1 --timeout 20 "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(PIP) install -q -e ".[offline,dev]"
	touch $@

setup: $(VENV)/.installed

## Fine-tune the offline default (pretrained MiniLM on the bundled demo set) and print the result.
train: $(VENV)/.installed
	$(PY) train.py $(ARGS)

## The whole test suite (what .ci/run runs).
test: $(VENV)/.installed
	$(PY) -m pytest $(ARGS)

## A paper-style study: its grid, then results.md/.json/.png (make experiment name=peft_glue ARGS="--set seed=1").
experiment: $(VENV)/.installed
	$(PY) experiments/run.py $(name) $(ARGS)

## Throughput: HF Trainer (run_glue defaults, tuned) vs tokentune on this GPU (experiments/bench/).
bench: $(VENV)/.installed
	$(PY) experiments/bench/bench.py $(ARGS)

clean:
	rm -rf outputs multirun .cache .pytest_cache

## Build the CUDA image (needs a Docker engine): python train.py is its entry point.
docker-build:
	docker build -f docker/Dockerfile -t tokentune .

## Re-pin docker/requirements.lock to the versions this venv tests with (run after changing deps).
lock: $(VENV)/.installed
	$(PIP) install -q uv
	$(PIP) freeze --exclude-editable | sed 's/+cpu$$//' > $(VENV)/constraints.txt
	$(VENV)/bin/uv pip compile pyproject.toml --extra offline --extra hub --python-version 3.12 \
	  --python-platform x86_64-manylinux_2_28 -c $(VENV)/constraints.txt --no-annotate \
	  --custom-compile-command "make lock" -o docker/requirements.lock
