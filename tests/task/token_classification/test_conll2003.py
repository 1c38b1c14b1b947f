"""CoNLL-2003 (../shared/data) through conf/task/conll2003.yaml: the real files read as the task
file says, the real MiniLM learns entities from a slice of them, and every vocabulary option
tokentune offers gives each word a first sub-token on real text (trim exactly the pretrained one's)."""
from __future__ import annotations

import pytest

from conftest import run_overrides
from task.token_classification.conftest import CONLL, needs_conll
from tokentune.config import compose as compose_train, validate
from tokentune.data.datamodule import TaskDataModule
from tokentune.run.fit import fit

pytestmark = needs_conll
TASK = ("task=conll2003", f"task.data_dir={CONLL}")


def datamodule(cache_dir, tmp_path, *overrides: str) -> TaskDataModule:
    dm = TaskDataModule(validate(compose_train(run_overrides(cache_dir, tmp_path) + [*TASK, *overrides])))
    dm.prepare_data()
    return dm


def test_minilm_learns_entities_from_800_training_sentences(tmp_path, cache_dir):
    # 50 steps; scored on 320 validation sentences (F1 0.52 when measured; at chance it is ~0)
    results = fit(compose_train(run_overrides(cache_dir, tmp_path) + [
        *TASK, "model=minilm", "data.max_train_examples=800", "data.batch_size=16", "optimizer.lr=3e-4",
        "data.max_length=64", "trainer.max_epochs=1", "trainer.limit_val_batches=5",
        "data.eval_batch_size=64", "export=false", "test=false"]))
    val = results["validation"]
    assert val["val/f1"] > 0.35 and val["val/f1_PER"] > 0.5
    assert results["data"]["train"]["sentences"] == 14041 and results["data"]["validation"]["sentences"] == 3250
    assert results["data"]["validation"]["truncated_words"] > 0  # max_length 64 cuts long sentences


def test_trim_encodes_every_word_as_the_pretrained_tokenizer_does(tmp_path, cache_dir):
    base = datamodule(cache_dir, tmp_path, "model=bert_tiny")
    # trimmed on every split's words (the default corpus is train's, where some validation words are not)
    trim = datamodule(cache_dir, tmp_path, "model=bert_tiny", "tokenizer=trim", "tokenizer.corpus.splits=[validation]")
    assert len(trim.tokenizer) < len(base.tokenizer)
    for split in ("train", "validation"):
        a, b = base.splits[split].tensors, trim.splits[split].tensors
        tokens = lambda dm, t: dm.tokenizer.convert_ids_to_tokens(t["input_ids"].tolist())  # noqa: E731
        assert tokens(trim, b) == tokens(base, a)
        for key in ("offsets", "token_labels", "word_ids", "word_starts"):
            assert b[key].equal(a[key]), (split, key)


@pytest.mark.parametrize("tokenizer", ["bpe8k", "wordpiece32k", "unigram32k", "byte_bpe32k", "extend"])
def test_a_built_or_extended_vocabulary_gives_every_word_a_first_sub_token(tmp_path, cache_dir, tokenizer):
    dm = datamodule(cache_dir, tmp_path, "model=bert_tiny", f"tokenizer={tokenizer}", "data.max_length=512")
    for split, report in dm.data_report.items():
        assert report["truncated_words"] == report["unaligned_words"] == 0, (tokenizer, split)
        t = dm.splits[split].tensors
        labelled = t["token_labels"] != -100
        assert int(labelled.sum()) == sum(len(words) for words in dm.indices[split])
        assert bool((t["word_starts"][labelled] == 1).all())
