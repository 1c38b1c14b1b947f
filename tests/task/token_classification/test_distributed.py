"""A tagger trained under DDP (two CPU processes) scores as one process with the global batch:
the entity metric gathers every rank's sentences before it scores them, and the training loss
is rescaled by the global count of labelled tokens (TokenClassification.training_loss)."""
from __future__ import annotations

import json

import pytest

from conftest import run_cli, run_overrides
from task.token_classification.synthetic import overrides, task_folder
from tokentune.config import compose as compose_train
from tokentune.run.fit import fit

# as tests/run/test_distributed.py: no dropout, fp32, a training set the global batch divides
CPU = ("model=bert_tiny", "trainer.precision=32-true", "data.buckets=null", "callbacks.progress_bar=none",
       "++model.config.hidden_dropout_prob=0", "++model.config.attention_probs_dropout_prob=0",
       "trainer.max_epochs=3", "optimizer.lr=3e-3", "export=false")


@pytest.mark.slow
def test_ddp_tagger_matches_one_process_with_the_global_batch(tmp_path, cache_dir):
    folder = task_folder(tmp_path / "data", train=192, validation=37)  # 37: the ranks' shares differ
    one = fit(compose_train(run_overrides(cache_dir, tmp_path / "single") + overrides(folder)
                            + [*CPU, "data.batch_size=16"]))
    ddp = run_cli("train.py", *overrides(folder), *CPU, "trainer=ddp", "trainer.accelerator=cpu",
                  "trainer.devices=2", "data.batch_size=8", f"paths.cache_dir={cache_dir}",
                  f"hydra.run.dir={tmp_path / 'ddp'}")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    two = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert one["steps"] == two["steps"] == 36
    assert one["validation"]["val/f1"] > 0.8  # a model that learned, so the comparison means something
    loss = "val/loss"
    entities = {k: v for k, v in two["validation"].items() if k != loss}
    assert entities == pytest.approx({k: v for k, v in one["validation"].items() if k != loss}, rel=1e-4, abs=1e-5)
    # the loss to rounding that 36 Adam steps amplify (5e-4 measured; the ranks pad to their own widths)
    assert two["validation"][loss] == pytest.approx(one["validation"][loss], rel=2e-3)
