"""A tagger trained under DDP (two CPU processes) scores as one process with the global batch:
the entity metric gathers every rank's sentences before it scores them, and the training loss
is rescaled by the global count of labelled tokens (TokenClassification.training_loss)."""
from __future__ import annotations

import pytest

from distributed_runs import one_and_two_processes
from task.token_classification.synthetic import overrides, task_folder


@pytest.mark.slow
def test_ddp_tagger_matches_one_process_with_the_global_batch(tmp_path, cache_dir):
    folder = task_folder(tmp_path / "data", train=192, validation=37)  # 192: the global batch divides it; 37: the ranks' shares differ
    one, two, _ = one_and_two_processes(cache_dir, tmp_path, [*overrides(folder), "trainer.max_epochs=3",
                                                              "optimizer.lr=3e-3", "export=false"])
    assert one["steps"] == two["steps"] == 36
    assert one["validation"]["val/f1"] > 0.8  # a model that learned, so the comparison means something
    loss = "val/loss"
    entities = {k: v for k, v in two["validation"].items() if k != loss}
    assert entities == pytest.approx({k: v for k, v in one["validation"].items() if k != loss}, rel=1e-4, abs=1e-5)
    # the loss to rounding that 36 Adam steps amplify (5e-4 measured; the ranks pad to their own widths)
    assert two["validation"][loss] == pytest.approx(one["validation"][loss], rel=2e-3)
