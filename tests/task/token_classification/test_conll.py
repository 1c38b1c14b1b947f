"""Reading CoNLL column files and tagged JSON lines: layouts, line numbers, every error."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from tokentune.errors import UserError
from tokentune.task.token_classification.conll import TaggedSentence, read_conll, read_tagged_jsonl

from .conftest import CONLL, needs_conll

S = TaggedSentence


def write(tmp_path, text: str | bytes, name: str = "train.txt"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


# The original CoNLL-2003 layout: token POS chunk NER, space-separated, -DOCSTART- documents.
ORIGINAL = """-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC

-DOCSTART- -X- -X- O

Peter NNP B-NP I-PER
Blackburn NNP I-NP I-PER
"""


def test_original_layout_last_column_by_default(tmp_path):
    assert read_conll(write(tmp_path, ORIGINAL)) == [
        S(("EU", "rejects", "German"), ("I-ORG", "O", "I-MISC"), 3, one_per_line=True),
        S(("Peter", "Blackburn"), ("I-PER", "I-PER"), 9, one_per_line=True)]


@pytest.mark.parametrize("column, tags", [(1, ("NNP", "VBZ", "JJ")), (-2, ("B-NP", "B-VP", "B-NP")),
                                          (3, ("I-ORG", "O", "I-MISC"))])
def test_tag_column_by_index(tmp_path, column, tags):
    assert read_conll(write(tmp_path, ORIGINAL), tag_column=column)[0].tags == tags


def test_crlf_bom_blank_runs_trailing_whitespace_and_no_final_blank_line(tmp_path):
    text = "\ufeffEU\tB-ORG \r\nrejects\tO\t\r\n\r\n\r\n  \r\n\t\r\nPeter\tB-PER\r\nBlackburn  \tI-PER"
    assert read_conll(write(tmp_path, text)) == [
        S(("EU", "rejects"), ("B-ORG", "O"), 1, one_per_line=True),
        S(("Peter", "Blackburn"), ("B-PER", "I-PER"), 7, one_per_line=True)]


def test_tabs_keep_spaces_inside_a_token(tmp_path):
    # A tab-separated line splits at tabs only, so a token with a space stays whole.
    assert read_conll(write(tmp_path, "New York\tB-LOC\nis\tO\n"))[0].tokens == ("New York", "is")


def test_token_lines(tmp_path):
    sentence = read_conll(write(tmp_path, ORIGINAL))[1]
    assert [sentence.token_line(i) for i in range(2)] == [9, 10]
    assert S(("a", "b"), None, 4).token_line(1) == 4  # JSON lines: all tokens on one line


def test_unlabelled(tmp_path):
    expected = [S(("EU", "rejects"), None, 1, one_per_line=True), S(("Peter",), None, 4, one_per_line=True)]
    assert read_conll(write(tmp_path, "EU\nrejects\n\nPeter\n"), labelled=False) == expected
    assert read_conll(write(tmp_path, "EU O\nrejects O\n\nPeter B-PER\n"), labelled=False) == expected


@pytest.mark.parametrize("text, kwargs, message", [
    ("EU B-ORG\nrejects\n", {}, "{path}:2: 'rejects' has no tag column; give every token a tag, or "
                                "read the file with labelled=False if it has none"),
    ("EU NNP B-ORG\nrejects VBZ O\n", dict(tag_column=3), "{path}:1: tag_column 3 is out of range for "
     "a line of 3 columns; set tag_column to the column that holds the tags"),
    ("EU NNP B-ORG\nrejects VBZ O\n", dict(tag_column=-4), "{path}:1: tag_column -4 is out of range "
     "for a line of 3 columns; set tag_column to the column that holds the tags"),
    ("EU NNP B-ORG\n", dict(tag_column=-3), "{path}:1: tag_column -3 is the token column; set "
                                            "tag_column to the column that holds the tags"),
    ("EU\t\tB-ORG\n", dict(tag_column=1), "{path}:1: 'EU' has an empty tag (column 1); give every token a tag"),
    ("-DOCSTART- -X- -X- O\n\n\n", {}, "{path}: no sentences (expected one token a line, a blank line "
                                       "between sentences); is this the right file?"),
    ("\r\n \r\n", {}, "{path}: the file is empty"),
])
def test_errors_name_file_and_line(tmp_path, text, kwargs, message):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        read_conll(path, **kwargs)
    assert str(err.value) == message.format(path=path)


def test_file_errors(tmp_path):
    with pytest.raises(UserError) as err:
        read_conll(tmp_path / "absent.txt")
    assert str(err.value) == f"{tmp_path / 'absent.txt'}: file not found"
    with pytest.raises(UserError) as err:
        read_conll(tmp_path)
    assert str(err.value) == f"{tmp_path}: is a folder, not a file; give the path of the file inside it"
    path = write(tmp_path, "EU\tB-ORG\n\ncaf\xe9\tO\n".encode("latin-1"))
    with pytest.raises(UserError) as err:
        read_conll(path)
    assert str(err.value) == f"{path}:3: not valid UTF-8 (invalid continuation byte); re-save the file as UTF-8"


def jsonl(tmp_path, *rows, name="train.jsonl"):
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    return write(tmp_path, "\r\n".join(lines), name)


def test_jsonl_tags_as_strings_and_as_label_indexes(tmp_path):
    path = jsonl(tmp_path, {"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}, "",
                 {"tokens": ["-DOCSTART-"], "tags": ["O"]}, {"tokens": ["Peter"], "tags": ["B-PER"]})
    assert read_tagged_jsonl(path) == [S(("EU", "rejects"), ("B-ORG", "O"), 1), S(("Peter",), ("B-PER",), 4)]
    # the hub's eriktks/conll2003 rows: ner_tags index the dataset's ClassLabel names
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    path = jsonl(tmp_path, {"id": "0", "words": ["EU", "rejects", "German"], "ner_tags": [3, 0, 7]})
    assert read_tagged_jsonl(path, tokens_key="words", tags_key="ner_tags", label_names=names) == [
        S(("EU", "rejects", "German"), ("B-ORG", "O", "B-MISC"), 1)]
    assert read_tagged_jsonl(path, tokens_key="words", labelled=False) == [S(("EU", "rejects", "German"), None, 1)]


@pytest.mark.parametrize("row, kwargs, message", [
    ('{"tokens": ["EU"], "tags": ["O"]', {}, "malformed JSON (Expecting ',' delimiter at column 33); "
                                            "each line must be one JSON object"),
    ('["EU", "O"]', {}, "each line must be a JSON object, not list"),
    ({"words": ["EU"], "tags": ["O"]}, {}, "no 'tokens' key (keys: words, tags); set tokens_key to "
                                          "the key that holds the tokens"),
    ({"tokens": ["EU"]}, {}, "no 'tags' key (keys: tokens); set tags_key to the key that holds the tags"),
    ({"tokens": "EU", "tags": ["O"]}, {}, "'tokens' is str, not a list of tokens"),
    ({"tokens": [], "tags": []}, {}, "'tokens' is an empty list; delete this line"),
    ({"tokens": ["EU", " "], "tags": ["O", "O"]}, {}, "token 1 (' ') is not a non-blank string; every "
                                                     "token in 'tokens' must be one"),
    ({"tokens": ["EU", 7], "tags": ["O", "O"]}, {}, "token 1 (7) is not a non-blank string; every "
                                                   "token in 'tokens' must be one"),
    ({"tokens": ["EU", "rejects"], "tags": ["B-ORG"]}, {}, "2 tokens but 1 tags; give each token one tag"),
    ({"tokens": ["EU"], "tags": [3]}, {}, "tag 0 is the number 3; pass label_names (the tag names in "
                                         "id order) to read numbered tags"),
    ({"tokens": ["EU"], "tags": [3]}, dict(label_names=["O", "B-ORG"]),
     "tag 0 is 3, not an index into the 2 label_names ['O', 'B-ORG']"),
    ({"tokens": ["EU"], "tags": [True]}, dict(label_names=["O", "B-ORG"]),
     "tag 0 (True) is neither a tag name nor a number"),
    ({"tokens": ["EU"], "tags": [""]}, {}, "tag 0 ('') is neither a tag name nor a number"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, row, kwargs, message):
    path = jsonl(tmp_path, {"tokens": ["fine"], "tags": ["O"]}, row)
    with pytest.raises(UserError) as err:
        read_tagged_jsonl(path, **kwargs)
    assert str(err.value) == f"{path}:2: {message}"


def test_jsonl_file_errors(tmp_path):
    path = jsonl(tmp_path, {"tokens": ["-DOCSTART-"], "tags": ["O"]})
    with pytest.raises(UserError) as err:
        read_tagged_jsonl(path)
    assert str(err.value) == f"{path}: no sentences (expected one JSON object a line); is this the right file?"
    with pytest.raises(UserError) as err:
        read_tagged_jsonl(tmp_path)
    assert str(err.value) == f"{tmp_path}: is a folder, not a file; give the path of the file inside it"


@needs_conll
@pytest.mark.real_data
def test_real_conll2003():
    train, valid = read_conll(CONLL / "train.txt"), read_conll(CONLL / "valid.txt")
    # the counts in ../shared/data/README.md
    assert (len(train), sum(len(s.tokens) for s in train)) == (14_041, 203_621)
    assert (len(valid), sum(len(s.tokens) for s in valid)) == (3_250, 51_362)
    assert train[:2] == [
        S(("EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."),
          ("B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"), 1, one_per_line=True),
        S(("Peter", "Blackburn"), ("B-PER", "I-PER"), 11, one_per_line=True)]
    assert Counter(t for s in train for t in s.tags) == {
        "O": 169_578, "B-LOC": 7_140, "B-PER": 6_600, "B-ORG": 6_321, "I-PER": 4_528, "I-ORG": 3_704,
        "B-MISC": 3_438, "I-LOC": 1_157, "I-MISC": 1_155}
    lines = (CONLL / "valid.txt").read_bytes().decode("utf-8").split("\n")
    last = valid[-1]
    assert lines[last.token_line(len(last.tokens) - 1) - 1] == f"{last.tokens[-1]}\t{last.tags[-1]}\r"
