"""Shared fixtures: compose configs like the CLI does, locate real data, share a cache."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# One torch thread per test process, set before anything imports torch (subprocesses, DDP ranks
# included, inherit it): the models here are tiny, and on a 2-core machine shared with other work
# torch's default of a thread per core oversubscribes it: a bert_tiny step took 0.43 s with 2
# threads and 0.09 s with 1 on the loaded CI machine, with the same losses.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def shared_data() -> Path | None:
    """Real data: $GLUE_DIR/.. or $TOKENTUNE_DATA, else ../shared/data beside the checkout."""
    candidates = []
    if os.environ.get("GLUE_DIR"):
        candidates.append(Path(os.environ["GLUE_DIR"]).parent)
    if os.environ.get("TOKENTUNE_DATA"):
        candidates.append(Path(os.environ["TOKENTUNE_DATA"]))
    candidates.append(ROOT.parent / "shared" / "data")
    for c in candidates:
        if (c / "glue" / "SST-2" / "train.tsv").is_file():
            return c
    return None


DATA = shared_data()
needs_real_data = pytest.mark.skipif(
    DATA is None, reason="real data absent: set GLUE_DIR (or TOKENTUNE_DATA) to run the GLUE tests")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache for the session: vocabularies and tokenized splits are built once."""
    return tmp_path_factory.mktemp("cache")


def run_overrides(cache_dir: Path, run_dir: Path) -> list[str]:
    """The overrides every test run starts with: the shared cache, its own run dir, real data."""
    base = [f"paths.cache_dir={cache_dir}", f"paths.output_dir={run_dir}",
            f"paths.root_dir={ROOT}", "callbacks.progress_bar=none"]
    if DATA is not None:
        base.append(f"paths.data_dir={DATA}")
    return base


@pytest.fixture
def compose(tmp_path, cache_dir):
    """compose(*overrides) → a DictConfig as `python train.py <overrides>` would see it."""
    from tokentune.config import compose as compose_train

    def _compose(*overrides: str, run_dir: Path | None = None):
        return compose_train(run_overrides(cache_dir, run_dir or tmp_path) + list(overrides))

    return _compose


# a full fine-tune that leaves chance on the demo (> 0.65 dev accuracy; see test_trim_trains_the_same.py)
LEARNS = ("trainer.max_epochs=8", "optimizer.lr=2e-3", "data.batch_size=16")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, cache_dir):
    """trained_run("bert_tiny") → (composed config, run dir, results) of a full fine-tune with
    LEARNS, run once per session (per xdist worker). Its model/ folder, as model.pretrained, starts
    other runs off chance: a random-init tiny model needs about 200 steps to leave it, and on a
    frozen random base the PEFT methods never do (there is nothing for them to adapt)."""
    from tokentune.config import compose as compose_train
    from tokentune.run.fit import fit

    runs = {}

    def run(model: str):
        if model not in runs:
            run_dir = tmp_path_factory.mktemp(f"{model}-trained")
            dcfg = compose_train(run_overrides(cache_dir, run_dir) + [f"model={model}", "finetune=full", *LEARNS])
            runs[model] = dcfg, run_dir, fit(dcfg)
        return runs[model]

    return run


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 300):
    """Run `python train.py ...` (or another script) as a user would; returns CompletedProcess."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def tiny_results(run_dir: Path, **fields):
    """A finished run's RunResults: `fields`, the rest a tiny run's."""
    from tokentune.run.results import RunResults

    tiny = dict(run_dir=str(run_dir), task="demo", model="bert_tiny", finetune="full", tokenizer="pretrained",
                seed=1, validation={}, test={}, best_checkpoint=None, checkpoint_mb=None, epochs=1, steps=1,
                parameters={"trainable": 1, "total": 1}, vocabulary={}, induction=None, wall_time_s=1.0)
    return RunResults(**{**tiny, **fields})


def write_results(run_dir: Path, **fields) -> None:
    """A finished run's results.json, written as fit writes it: `fields`, the rest a tiny run's."""
    tiny_results(run_dir, **fields).write(run_dir / "results.json")
