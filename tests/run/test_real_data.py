"""The real-data acceptance run: pretrained MiniLM on a few thousand SST-2 rows, on the CPU."""
import time

import pytest

from conftest import needs_real_data
from tokentune.run.fit import fit


@needs_real_data
@pytest.mark.real_data
@pytest.mark.slow
def test_minilm_learns_sst2_on_cpu(compose):
    start = time.perf_counter()
    results = fit(compose("model=minilm", "task=sst2", "data.max_train_examples=3000",
                          "trainer.max_epochs=1", "optimizer.lr=1e-4", "callbacks.checkpoint=false",
                          "logger=none", "test=false"))
    elapsed = time.perf_counter() - start
    assert results["validation"]["val/accuracy"] >= 0.80, results["validation"]
    assert elapsed < 180, f"took {elapsed:.0f} s"
