"""The real-data acceptance run: pretrained MiniLM on a few thousand SST-2 rows, on the CPU."""
import pytest

from conftest import needs_real_data
from tokentune.run.fit import fit


@needs_real_data
@pytest.mark.real_data
@pytest.mark.slow
def test_minilm_learns_sst2_on_cpu(compose):
    results = fit(compose("model=minilm", "task=sst2", "data.max_train_examples=3000",
                          "trainer.max_epochs=1", "optimizer.lr=1e-4", "callbacks.checkpoint=false",
                          "logger=none", "test=false"))
    assert results["validation"]["val/accuracy"] >= 0.80, results["validation"]
