"""Bad data is refused, not learned (issue 26 item 5): a split of empty examples, or more of them
than data.max_empty_share; a damaged tokenized-data cache file; a setting no schema lists.

Each test names, in its docstring, the hand-made breakage it failed under."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from conftest import run_overrides
from tokentune.config import compose, validate
from tokentune.data import encode
from tokentune.errors import ConfigError, UserError

from test_datamodule import DEMO, loaded


def demo_with(tmp_path: Path, train_rows: list[str]) -> Path:
    """The demo task's folder with `train_rows` (sentence<TAB>label) as its train.tsv."""
    data = tmp_path / "demo"
    data.mkdir()
    (data / "dev.tsv").write_bytes((DEMO / "dev.tsv").read_bytes())
    (data / "train.tsv").write_text("sentence\tlabel\n" + "".join(f"{row}\n" for row in train_rows))
    return data


def test_a_split_of_empty_examples_is_refused_before_anything_is_built(tmp_path):
    """readers.check_empty, called by the data module before the vocabulary and the tokenized
    splits (breakage: the call removed: the split of blank sentences was tokenized, cached and
    trained on as [CLS] [SEP])."""
    data = demo_with(tmp_path, ["\t0", "  \t1", "\t1"])
    cache = tmp_path / "cache"
    with pytest.raises(UserError) as err:
        loaded(cache, f"task.data_dir={data}", "tokenizer=bpe8k")
    assert str(err.value) == (f"task.splits.train ({data / 'train.tsv'}): all 3 examples are empty; "
                              "are task.text_columns the columns that hold the text?")
    assert not cache.exists()  # no vocabulary built, nothing tokenized


def test_more_empty_examples_than_max_empty_share_are_refused(tmp_path):
    """data.max_empty_share (default 0.01): 2 of 10 is refused, accepted under 0.25 (breakage:
    only the all-empty case checked: 2 of 10 blank sentences were trained on)."""
    data = demo_with(tmp_path, [f"sentence {i}\t{i % 2}" for i in range(8)] + ["\t0", " \t1"])
    cache = tmp_path / "cache"
    with pytest.raises(UserError) as err:
        loaded(cache, f"task.data_dir={data}")
    assert str(err.value) == (f"task.splits.train ({data / 'train.tsv'}): 2 of 10 examples are empty "
                              "(20.0%), more than data.max_empty_share=0.01; fix or drop those rows, "
                              "or raise data.max_empty_share")
    assert len(loaded(cache, f"task.data_dir={data}", "data.max_empty_share=0.25").splits["train"]) == 10
    with pytest.raises(ConfigError, match=r"^data.max_empty_share: must be a share in \[0, 1\], got 1.5$"):
        validate(compose(run_overrides(cache, cache / "run") + ["data.max_empty_share=1.5"]))


def test_blank_lines_of_a_language_modelling_text_are_not_empty_examples(tmp_path):
    """The causal-LM kind's example_texts: its one example is the whole file (breakage: the
    kind's texts, one per line, counted instead: the 50 % blank lines were refused)."""
    data = tmp_path / "text"
    data.mkdir()
    (data / "input.txt").write_text("".join(f"line number {i} of the play\n\n" for i in range(200)))
    dm = loaded(tmp_path / "cache", "task=shakespeare", f"task.data_dir={data}", "model=gpt2_tiny",
                "task.block_size=16")
    assert len(dm.splits["train"]) > 0 and len(dm.splits["validation"]) > 0


def test_a_cache_file_that_does_not_match_its_checksum_is_tokenized_again(tmp_path, caplog):
    """encode.load_cached checks the sha256 in the file's first line: one token id changed in
    the tensor data, which torch.load reads without complaint, gives one warning and the split
    tokenized again (breakage: the comparison with the stored sha256 removed: the changed id was
    loaded and trained on)."""
    cache = tmp_path / "cache"
    first = loaded(cache)
    (train,) = (cache / "data" / "demo").glob("train-*.pt")
    ids = first.splits["train"].tensors["input_ids"]
    raw = bytearray(train.read_bytes())
    at = raw.index(ids[3:7].numpy().tobytes())  # four int32 token ids, in the tensor's storage
    raw[at] ^= 1
    train.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="tokentune.data.encode"):
        again = loaded(cache)
    assert [r.getMessage() for r in caplog.records] == [
        f"ignoring cache file {train} (its bytes do not match its sha256); re-tokenizing"]
    assert torch.equal(again.splits["train"].tensors["input_ids"], ids)
    assert torch.equal(encode.load_cached(train)["input_ids"], ids)  # rewritten whole


@pytest.mark.parametrize("override, message", [
    ("+data.batchsize=8", "data.batchsize: no such setting; data has batch_size, eval_batch_size, "
                          "max_length, group_by_length, num_workers, pin_memory, max_train_examples, "
                          "buckets, packing, max_empty_share"),
    ("+task.splits.train.file=x.tsv", "task.splits.train.file: no such setting; task.splits.train has "
                                      "path, header, hub_subset, hub_split"),
    ("+finetune.rank=8", "finetune.rank: no such setting; finetune has method, lr"),
    ("+epochs=3", "epochs: no such setting; the config's top level has model, task, tokenizer, finetune, "
                  "data, optimizer, trainer, paths, logger, callbacks, resume, seed, ckpt_path, test, export, per_task"),
], ids=["data", "split", "method", "top_level"])
def test_a_key_no_schema_lists_is_refused_even_with_plus(compose, override, message):
    """config.unknown_keys, in validate (breakage: validate without it: `+data.batchsize=8`
    composed, and the run trained at the default batch size)."""
    with pytest.raises(ConfigError) as err:
        validate(compose("model=bert_tiny", override))
    assert str(err.value) == message


def test_a_free_form_group_takes_new_keys(compose):
    """model.config is a dict by schema: its keys are the transformers config's (breakage:
    unknown_keys checking dict nodes too: this was refused)."""
    cfg = validate(compose("model=bert_tiny", "+model.config.classifier_dropout=0.2"))
    assert cfg.model.config["classifier_dropout"] == 0.2
