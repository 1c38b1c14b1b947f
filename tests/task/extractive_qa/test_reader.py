"""Reading questions: SQuAD JSON, JSON lines, and each bad input stopping in one line that names
the file and the question id."""
from __future__ import annotations

import json

import pytest

from conftest import run_cli, run_overrides
from task.extractive_qa.conftest import SQUAD, needs_squad
from task.extractive_qa.synthetic import overrides, squad_json, task_folder
from tokentune.config import compose as compose_train, validate
from tokentune.errors import ConfigError, UserError
from tokentune.task.extractive_qa.squad import read_qa


def task_of(compose, folder, *extra):
    return validate(compose(*overrides(folder), "model=bert_tiny", *extra)).task


def broken(folder, change) -> None:
    data = squad_json(3, 0)
    change(data["data"][0]["paragraphs"][1])
    (folder / "train.json").write_text(json.dumps(data))


def test_jsonl_rows_read_as_the_squad_json_does(compose, tmp_path):
    folder = task_folder(tmp_path, train=5, validation=3)
    rows = [{"id": qa["id"], "question": qa["question"], "context": p["context"],
             "answers": {"text": [a["text"] for a in qa["answers"]],
                         "answer_start": [a["answer_start"] for a in qa["answers"]]}}
            for p in json.loads((folder / "train.json").read_text())["data"][0]["paragraphs"] for qa in p["qas"]]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from_json = read_qa(task_of(compose, folder), "train")
    from_jsonl = read_qa(task_of(compose, folder, "task.format=jsonl", "task.splits.train.path=train.jsonl"), "train")
    assert from_json == from_jsonl and len(from_json) == 5


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p["qas"][0]["answers"][0].update(answer_start=p["qas"][0]["answers"][0]["answer_start"] + 1),
     "the answer {text!r} is not at answer_start"),
    (lambda p: p.update(context="  "), "an empty context"),
    (lambda p: p["qas"][0].update(question=""), "an empty question"),
    (lambda p: p["qas"][0].update(answers=[], is_impossible=True),
     "an unanswerable question (v2.0 data) in a v1.1 task; use task=squad_v2"),
])
def test_a_bad_question_stops_in_one_line_naming_file_and_question_id(compose, tmp_path, change, message):
    folder = task_folder(tmp_path, train=3, validation=2)
    broken(folder, change)
    qa = json.loads((folder / "train.json").read_text())["data"][0]["paragraphs"][1]["qas"][0]
    with pytest.raises(UserError) as err:
        read_qa(task_of(compose, folder), "train")
    text = qa["answers"][0]["text"] if qa["answers"] else ""
    assert str(err.value).startswith(f"{folder / 'train.json'}: question id {qa['id']}: ")
    assert message.format(text=text) in str(err.value) and "\n" not in str(err.value)


def test_a_json_file_that_is_not_the_squad_layout_is_refused(compose, tmp_path):
    folder = task_folder(tmp_path, train=3, validation=2)
    (folder / "train.json").write_text(json.dumps([{"question": "q", "context": "c"}]))
    with pytest.raises(UserError, match=r"train.json: not the SQuAD layout .*: no top-level 'data' list$"):
        read_qa(task_of(compose, folder), "train")
    (folder / "train.json").write_text(json.dumps({"data": [{"title": "x", "qas": []}]}))
    with pytest.raises(UserError, match=r"data\[0\] has no 'paragraphs' list$"):
        read_qa(task_of(compose, folder), "train")


def test_the_cli_prints_the_error_line_and_exits_2(tmp_path, cache_dir):
    folder = task_folder(tmp_path / "data", train=3, validation=2)
    broken(folder, lambda p: p.update(context=""))
    out = run_cli("train.py", *run_overrides(cache_dir, tmp_path / "run"), *overrides(folder), "model=bert_tiny")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == f"error: {folder / 'train.json'}: question id q1: an empty context"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("task.format", "tsv", "task.format: 'tsv' is not a format for questions ('squad', 'jsonl', 'hub')"),
    ("task.metrics", "[accuracy]", "task.metrics: 'accuracy' is not a question-answering metric"),
    ("task.n_best", "0", "task.n_best: must be at least 1"),
    ("data.packing", "true", "data.packing: a packed row feeds a sentence head"),
])
def test_each_schema_check_refuses_its_bad_value(compose, tmp_path, key, value, message):
    with pytest.raises(ConfigError) as err:
        validate(compose(*overrides(tmp_path), "model=bert_tiny", f"{key}={value}", "task.monitor=loss"))
    assert str(err.value).startswith(message)


@needs_squad
def test_the_shipped_excerpts_read_as_their_readme_counts_them(compose):
    v1 = validate(compose("task=squad", "model=bert_tiny", f"task.data_dir={SQUAD}")).task
    v2 = validate(compose("task=squad_v2", "model=bert_tiny", f"task.data_dir={SQUAD}")).task
    assert (v1.format, v1.version_2, v1.doc_stride) == ("squad", False, 128)
    assert [len(read_qa(v1, s)) for s in ("train", "validation")] == [269, 810]
    dev2 = read_qa(v2, "validation")
    assert (len(dev2), sum(not e.answerable for e in dev2)) == (208, 112)
    with pytest.raises(UserError, match=r"dev-v2.0.json: question id \w+: an unanswerable question"):
        read_qa(validate(compose("task=squad", "model=bert_tiny", f"task.data_dir={SQUAD}",
                                 "task.splits.validation.path=dev-v2.0.json")).task, "validation")
    assert validate(compose("task=squad", "model=bert_tiny")).data.max_length == 384
