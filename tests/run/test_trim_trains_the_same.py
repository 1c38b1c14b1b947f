"""A run on the trimmed vocabulary trains exactly as the untrimmed one (issue 12): the trim is
exact on every split's text, its rows are copies, and its resizing draws on its own RNG stream."""
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
