"""Readers: every format, and one clear message per kind of bad input."""
from pathlib import Path

import pytest

from conftest import DATA, needs_real_data
from tokentune.config import SplitConfig, TaskConfig
from tokentune.data.readers import Example, read_split, read_text
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
    (b"\xef\xbb\xbfsentence\tlabel\nok\tpos\n\xe9\tpos\n", "train.tsv:3: not valid UTF-8"),
])
def test_bad_input_names_file_and_line(tmp_path, content, message):
    write(tmp_path, "train.tsv", content)
    with pytest.raises(UserError) as err:
        read_split(task(tmp_path), "train")
    assert message in str(err.value)


@pytest.mark.parametrize("second_line,message", [
    ('{"sentence": ', "train.jsonl:2: malformed JSON"),
    ('{"label": "neg"}', "train.jsonl:2: no 'sentence' key (the first line has one)"),
])
def test_bad_json_line_is_named(tmp_path, second_line, message):
    write(tmp_path, "train.jsonl", '{"sentence": "a", "label": "pos"}\n' + second_line + "\n")
    t = task(tmp_path, format="jsonl", splits={"train": SplitConfig(path="train.jsonl")})
    with pytest.raises(UserError) as err:
        read_split(t, "train")
    assert message in str(err.value)


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



# Files as real corpora ship them. Each format holds the same two rows; the text column comes
# last, where a stray "\r" would stick to it (labels are stripped anyway).
EXAMPLES = [Example("good film", None, 1, "0"), Example("dull, slow", None, 0, "1")]
FILES = {  # format → (content, what reading it gives)
    "tsv": ("index\tlabel\tsentence\n0\tpos\tgood film\n1\tneg\tdull, slow\n", EXAMPLES),
    "csv": ('index,label,sentence\n0,pos,good film\n1,neg,"dull, slow"\n', EXAMPLES),
    "jsonl": ('{"index": 0, "label": "pos", "sentence": "good film"}\n'
              '{"index": 1, "label": "neg", "sentence": "dull, slow"}\n', EXAMPLES),
    "text": ("good film\ndull, slow\n", "good film\ndull, slow\n"),  # causal LM corpora
}
TABLES = ["tsv", "csv", "jsonl"]


def read_as(tmp_path: Path, fmt: str, content: str | bytes):
    """What reading `content` as `fmt` gives: Examples, or for a text corpus its text."""
    write(tmp_path, f"train.{fmt}", content)
    if fmt == "text":
        return read_text(tmp_path / "train.text")
    t = task(tmp_path, format=fmt, splits={"train": SplitConfig(path=f"train.{fmt}")},
             index_column="index")
    return read_split(t, "train")


@pytest.mark.parametrize("fmt", FILES)
def test_byte_order_mark_before_the_header(tmp_path, fmt):
    content, expected = FILES[fmt]
    assert read_as(tmp_path, fmt, b"\xef\xbb\xbf" + content.encode()) == expected


@pytest.mark.parametrize("fmt", FILES)
def test_crlf_line_endings(tmp_path, fmt):
    content, expected = FILES[fmt]
    assert read_as(tmp_path, fmt, content.replace("\n", "\r\n")) == expected


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("fmt", TABLES)
def test_last_line_without_newline(tmp_path, fmt, eol):
    content, expected = FILES[fmt]
    assert read_as(tmp_path, fmt, content.replace("\n", eol).removesuffix(eol)) == expected


@pytest.mark.parametrize("fmt", TABLES)
def test_blank_trailing_lines_are_no_rows(tmp_path, fmt):
    content, expected = FILES[fmt]
    assert read_as(tmp_path, fmt, content + "\n  \n\r\n\n") == expected


def test_quotes_inside_unquoted_tsv_fields(tmp_path):
    write(tmp_path, "train.tsv", 'sentence\tlabel\n"opening quote\tpos\nclosing" quote\tneg\n'
                                 'a ""double"" one\tpos\n"\tneg\n')
    assert read_split(task(tmp_path), "train") == [
        Example('"opening quote', None, 1, None), Example('closing" quote', None, 0, None),
        Example('a ""double"" one', None, 1, None), Example('"', None, 0, None)]


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_csv_quoted_fields_with_delimiters_and_newlines(tmp_path, eol):
    content = ('label,sentence\npos,"one, two"\nneg,"first line\nsecond, ""quoted"" line"\n'
               'pos,"\n"\nneg,"spans\ntwo lines"\n')
    t = task(tmp_path, format="csv", splits={"train": SplitConfig(path="train.csv")})
    write(tmp_path, "train.csv", content.replace("\n", eol))
    assert read_split(t, "train") == [
        Example("one, two", None, 1, None),
        Example('first line\nsecond, "quoted" line', None, 0, None),
        Example("\n", None, 1, None), Example("spans\ntwo lines", None, 0, None)]
    # a record's line is the one it starts on, however many lines the records before it span
    write(tmp_path, "train.csv", (content + 'pos,"bad\nrecord",extra\n').replace("\n", eol))
    with pytest.raises(UserError, match=r"train.csv:9: expected 2 fields"):
        read_split(t, "train")


def test_jsonl_with_extra_keys(tmp_path):
    write(tmp_path, "train.jsonl", '{"id": 7, "sentence": "good", "label": "pos", "meta": {"a": 1}}\n'
                                   '{"sentence": "bad", "extra": [1, 2], "label": "neg"}\n')
    t = task(tmp_path, format="jsonl", splits={"train": SplitConfig(path="train.jsonl")})
    assert read_split(t, "train") == [Example("good", None, 1, None), Example("bad", None, 0, None)]


@pytest.mark.parametrize("fmt", ["tsv", "jsonl"])
def test_unicode_line_separators_inside_fields_are_text(tmp_path, fmt):
    content, _ = FILES[fmt]
    text = "good\u2028film\x85!"  # str.splitlines would end a line at either
    assert read_as(tmp_path, fmt, content.replace("good film", text)) == [
        Example(text, None, 1, "0"), EXAMPLES[1]]


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
