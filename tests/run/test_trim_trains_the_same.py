"""A run on the trimmed vocabulary trains exactly as the untrimmed one (issue 12): the trim is
exact on every split's text, its rows are copies, and its resizing draws on its own RNG stream."""
import json

import pytest
from exported import dev_metrics
from transformers import AutoConfig

from tokentune.config import validate
from tokentune.run.fit import fit

# off chance on the demo (see test_train.py's LEARNS), dropout on: the RNG streams must line up
LEARNS = ("model=bert_tiny", "trainer.max_epochs=8", "optimizer.lr=2e-3", "data.batch_size=16")


def test_a_trimmed_run_ends_where_the_untrimmed_one_does(compose, tmp_path):
    plain = fit(compose(*LEARNS, run_dir=tmp_path / "plain"))
    trimmed = fit(compose(*LEARNS, "tokenizer=trim", "tokenizer.corpus.splits=[validation]",
                          run_dir=tmp_path / "trim"))
    assert plain["validation"]["val/accuracy"] > 0.65  # chance: 0.5 on the balanced dev split
    assert trimmed["vocabulary"]["vocab_size"] < plain["vocabulary"]["vocab_size"] // 10
    assert trimmed["parameters"]["total"] < plain["parameters"]["total"]
    assert trimmed["validation"] == plain["validation"]  # bit for bit
    # the report counts what the trim saved, and the trimmed model leaves as a plain folder
    report = json.loads((tmp_path / "trim" / "vocab_report.json").read_text())
    assert report["total_params"] == trimmed["parameters"]["total"]
    assert report["base_total_params"] == plain["parameters"]["total"]
    assert report["checkpoint_mb"] == trimmed["checkpoint_mb"] < plain["checkpoint_mb"]
    assert report["model_mb"] == trimmed["model_mb"] < plain["model_mb"]
    folder = tmp_path / "trim" / "model"
    assert AutoConfig.from_pretrained(folder).vocab_size == trimmed["vocabulary"]["vocab_size"]
    cfg = validate(compose(*LEARNS, "tokenizer=trim", run_dir=tmp_path / "trim"))
    exported = dev_metrics(folder, cfg)
    assert exported == pytest.approx({k: trimmed["validation"][k] for k in exported}, abs=1e-6)
