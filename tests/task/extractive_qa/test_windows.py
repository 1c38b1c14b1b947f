"""Windows and offsets: for every tokenizer tokentune makes or loads and every family with a
question-answering head, each training window's answer tokens cover the answer's characters,
the windows of a question cover its whole context, and a window without the answer points at
the null position."""
from __future__ import annotations

import pytest

from conftest import run_overrides
from task.extractive_qa.synthetic import overrides, task_folder
from tokentune.config import compose as compose_train, validate
from tokentune.errors import UserError
from tokentune.task.extractive_qa.postprocess import span_text

CASES = [("bert_tiny", t) for t in ("pretrained", "bpe8k", "wordpiece32k", "unigram32k", "byte_bpe32k",
                                    "extend", "trim")] + \
        [(m, "pretrained") for m in ("gpt2_tiny", "llama_tiny", "qwen2_tiny", "roberta_tiny", "deberta_tiny",
                                     "modernbert_tiny")] + [("gpt2_tiny", "extend"), ("gpt2_tiny", "byte_bpe32k"), ("roberta_tiny", "bpe8k")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return task_folder(tmp_path_factory.mktemp("qa-data"), train=60, validation=12, sentences=8)


def prepared(cache_dir, tmp_path, folder, *extra):
    from tokentune.data.datamodule import TaskDataModule

    dm = TaskDataModule(validate(compose_train(run_overrides(cache_dir, tmp_path) + overrides(folder) + list(extra))))
    dm.prepare_data()
    return dm


@pytest.mark.parametrize(("model", "tokenizer"), CASES, ids=[f"{m}-{t}" for m, t in CASES])
def test_every_window_maps_its_answer_to_tokens_and_back(cache_dir, tmp_path, folder, model, tokenizer):
    dm = prepared(cache_dir, tmp_path, folder, f"model={model}", f"tokenizer={tokenizer}")
    for split in ("train", "validation"):
        t = dm.splits[split].tensors
        examples = dm.indices[split]
        offsets, starts, ends = t["offsets"].tolist(), t["char_starts"].tolist(), t["char_ends"].tolist()
        covered = {i: set() for i in range(len(examples))}
        holds = {i: 0 for i in range(len(examples))}
        assert int(t["lost_answers"]) == 0
        for w, (e, s, end) in enumerate(zip(t["window_example"].tolist(), t["start_positions"].tolist(),
                                            t["end_positions"].tolist())):
            a, b = offsets[w], offsets[w + 1]
            assert b - a <= dm.cfg.data.max_length
            ex = examples[e]
            covered[e] |= {c for x, y in zip(starts[a:b], ends[a:b]) if x >= 0 for c in range(x, y)}
            if (s, end) == (0, 0):  # the null position: this window does not hold the answer
                assert starts[a] == -1  # never a context token
                continue
            text, _, _ = span_text(ex.context, starts[a + s], ends[a + end])
            assert text == ex.answers[0][0], (model, tokenizer, ex.id)
            holds[e] += 1
        for e, ex in enumerate(examples):
            assert holds[e] >= 1
            # every character of the context but spaces is inside some window's token
            assert {i for i, ch in enumerate(ex.context) if not ch.isspace()} <= covered[e]
    assert dm.splits["train"].tensors["offsets"].numel() - 1 > len(dm.indices["train"])  # several windows


def test_trim_tokenizes_questions_and_contexts_exactly_as_the_backbone(cache_dir, tmp_path, folder):
    base = prepared(cache_dir, tmp_path / "a", folder, "model=bert_tiny")
    trimmed = prepared(cache_dir, tmp_path / "b", folder, "model=bert_tiny", "tokenizer=trim")
    assert len(trimmed.tokenizer) < len(base.tokenizer) / 10
    for split in ("train",):
        ids_a, ids_b = (dm.splits[split].tensors["input_ids"].tolist() for dm in (base, trimmed))
        assert base.tokenizer.convert_ids_to_tokens(ids_a) == trimmed.tokenizer.convert_ids_to_tokens(ids_b)


def test_a_doc_stride_that_leaves_the_context_no_room_names_file_and_question(cache_dir, tmp_path, folder):
    with pytest.raises(UserError) as err:
        prepared(cache_dir, tmp_path, folder, "model=bert_tiny", "data.max_length=24", "task.doc_stride=16")
    message = str(err.value)
    assert message.startswith(f"{folder / 'train.json'}: question id q0: task.doc_stride=16 is not below "
                              "data.max_length=24 minus the question's 6 tokens and 3 special tokens (15 tokens of context per window)")
    assert "\n" not in message
