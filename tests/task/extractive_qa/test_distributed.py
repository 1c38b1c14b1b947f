"""A reader trained under DDP (two CPU processes) scores as one process with the global batch: the
SQuAD metric gathers every rank's windows (the ranks' shares differ, and the sampler repeats a
window to even them out) before it answers and scores the questions."""
from __future__ import annotations

import pytest

from distributed_runs import one_and_two_processes
from task.extractive_qa.synthetic import overrides, task_folder


@pytest.mark.slow
def test_ddp_reader_matches_one_process_with_the_global_batch(tmp_path, cache_dir):
    # 200 questions: 224 windows, 14 global batches of 16; 37 questions: 45 windows, split 23 + 22
    folder = task_folder(tmp_path / "data", train=200, validation=37)
    one, two, _ = one_and_two_processes(cache_dir, tmp_path, [*overrides(folder), "trainer.max_epochs=4",
                                                              "optimizer.lr=3e-3", "export=false"])
    assert one["data"]["train"]["windows"] == 224 and one["data"]["validation"]["windows"] == 45
    assert one["steps"] == two["steps"] == 56
    assert one["validation"]["val/f1"] > 60  # a reader that learned, so the comparison means something
    assert two["data"] == one["data"]
    loss = "val/loss"
    scores = {k: v for k, v in two["validation"].items() if k != loss}
    assert scores == pytest.approx({k: v for k, v in one["validation"].items() if k != loss}, abs=1e-4)
    # not the loss: the sampler repeats one of the 45 windows so that each rank scores 23, and the
    # ranks' means are averaged (0.3 % apart measured); the metric drops the repeated window
    assert two["validation"][loss] == pytest.approx(one["validation"][loss], rel=1e-2)
