"""A run under DDP on two CPU processes beside the same run in one process with the global batch,
for the tests that compare the two (tests/run/test_distributed.py and each task kind's)."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli, run_overrides

# Exactness: no dropout (each process draws its own masks), fp32, no worker processes, batches
# padded to their own longest row; the training set must be a multiple of the global batch (a
# ragged last batch is averaged per rank under DDP)
CPU = ("model=bert_tiny", "trainer.precision=32-true", "data.num_workers=0", "data.pin_memory=false",
       "data.buckets=null", "callbacks.progress_bar=none", "++model.config.hidden_dropout_prob=0",
       "++model.config.attention_probs_dropout_prob=0")
DDP2 = ("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2")


def one_and_two_processes(cache_dir: Path, tmp_path: Path, overrides, *, batch_size: int = 16):
    """(results.json of one process at batch_size, of two DDP processes at half of it each, the
    DDP command's CompletedProcess); the runs are tmp_path/single and tmp_path/ddp."""
    from tokentune.config import compose
    from tokentune.run.fit import fit

    overrides = [*CPU, *overrides]
    one = fit(compose(run_overrides(cache_dir, tmp_path / "single") + overrides + [f"data.batch_size={batch_size}"]))
    ddp = run_cli("train.py", *overrides, *DDP2, f"data.batch_size={batch_size // 2}", f"paths.cache_dir={cache_dir}",
                  f"hydra.run.dir={tmp_path / 'ddp'}")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    return one, json.loads((tmp_path / "ddp" / "results.json").read_text()), ddp
