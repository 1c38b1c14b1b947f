"""Readers: every format, and one clear message per kind of bad input."""
from pathlib import Path

import pytest

from conftest import DATA, needs_real_data
from tokentune.config import SplitConfig, TaskConfig
from tokentune.data.readers import read_split
from tokentune.errors import UserError


def task(tmp_path: Path, **kw) -> TaskConfig:
    base = dict(name="t", data_dir=str(tmp_path), splits={"train": SplitConfig(path="train.tsv")},
                labels=["neg", "pos"])
    base.update(kw)
    return TaskConfig(**base)


def write(tmp_path: Path, name: str, text: str | bytes) -> None:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())


def test_tsv_with_header_and_string_labels(tmp_path):
    write(tmp_path, "train.tsv", 'sentence\tlabel\nsaid "great"\tpos\nbad\tneg\n')
    ex = read_split(task(tmp_path), "train")
    assert [(e.text_a, e.label) for e in ex] == [('said "great"', 1), ("bad", 0)]


def test_csv_and_jsonl_with_sentence_pairs(tmp_path):
    write(tmp_path, "train.csv", 'a,b,y\n"x, y",z,pos\n')
    t = task(tmp_path, format="csv", splits={"train": SplitConfig(path="train.csv")},
             text_columns=["a", "b"], label_column="y")
    assert read_split(t, "train")[0].text_a == "x, y"
    write(tmp_path, "train.jsonl", '{"a": "p", "b": "q", "y": "neg"}\n\n{"a": "r", "b": "s", "y": "pos"}\n')
    t = task(tmp_path, format="jsonl", splits={"train": SplitConfig(path="train.jsonl")},
             text_columns=["a", "b"], label_column="y")
    assert [(e.text_a, e.text_b, e.label) for e in read_split(t, "train")] == [("p", "q", 0), ("r", "s", 1)]


def test_regression_labels_are_floats(tmp_path):
    write(tmp_path, "train.tsv", "sentence\tlabel\na\t3.5\n")
    t = task(tmp_path, kind="regression", labels=None, metrics=["pearson"], monitor="pearson")
    assert read_split(t, "train")[0].label == 3.5


@pytest.mark.parametrize("content,message", [
    ("sentence\tlabel\nok\tpos\nbroken row\n", "train.tsv:3: expected 2 fields (sentence, label), found 1"),
    ("sentence\tlabel\nok\tpos\nfine\tmaybe\n", "train.tsv:3: label 'maybe' is not in task.labels ['neg', 'pos']"),
    ("text\tlabel\nok\tpos\n", "train.tsv: no column 'sentence' (columns: text, label); fix task.text_columns"),
    ("sentence\tgold\nok\tpos\n", "train.tsv: no label column 'label' (columns: sentence, gold)"),
    ("", "train.tsv: the file is empty"),
    (b"sentence\tlabel\nok\tpos\ncaf\xe9\tpos\n", "train.tsv:3: not valid UTF-8"),
    ("sentence\tlabel\n", "train.tsv: no data rows"),
])
def test_bad_input_names_file_and_line(tmp_path, content, message):
    write(tmp_path, "train.tsv", content)
    with pytest.raises(UserError) as err:
        read_split(task(tmp_path), "train")
    assert message in str(err.value)


def test_malformed_json_names_the_line(tmp_path):
    write(tmp_path, "train.jsonl", '{"sentence": "a", "label": "pos"}\n{"sentence": \n')
    t = task(tmp_path, format="jsonl", splits={"train": SplitConfig(path="train.jsonl")})
    with pytest.raises(UserError, match=r"train.jsonl:2: malformed JSON"):
        read_split(t, "train")


def test_missing_file_without_hub_fallback(tmp_path):
    with pytest.raises(UserError, match=r"train.tsv: file not found; set task.data_dir"):
        read_split(task(tmp_path / "nowhere"), "train")


def test_missing_file_with_hub_fallback_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    t = task(tmp_path / "nowhere", hub_dataset="nyu-mll/glue", hub_subset="sst2")
    with pytest.raises(UserError) as err:
        read_split(t, "train")
    assert "GLUE_DIR" in str(err.value)


@needs_real_data
def test_real_glue_files_read(compose):
    from tokentune.config import validate

    sst2 = validate(compose("task=sst2")).task
    assert len(read_split(sst2, "train")) == 67349
    test = read_split(sst2, "test")
    assert len(test) == 1821 and test[0].label is None and test[0].index == "0"
    cola = validate(compose("task=cola")).task  # no header on train/dev, header on test
    dev = read_split(cola, "validation")
    assert len(dev) == 1043 and {e.label for e in dev} == {0, 1}
    assert len(read_split(cola, "test")) == 1063
    rte = validate(compose("task=rte")).task  # sentence pairs, string labels
    train = read_split(rte, "train")
    assert len(train) == 2490 and train[0].text_b and {e.label for e in train} == {0, 1}
