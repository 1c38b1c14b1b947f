"""Tag schemes: conversion to IOB2 (by hand and property-tested), violations, the label list."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokentune.errors import UserError
from tokentune.task.token_classification.conll import TaggedSentence, read_conll
from tokentune.task.token_classification.tags import (check_labels, check_scheme, collect_labels,
                                                      count_violations, split_tag, to_iob2)

from .conftest import CONLL, needs_conll

FAST = settings(max_examples=200, deadline=None, derandomize=True, database=None)
CONLL_LABELS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


def test_split_tag():
    assert split_tag("O") == ("O", None)
    assert split_tag("B-PER") == ("B", "PER")
    assert split_tag("I-per-son") == ("I", "per-son")  # the type is all after the first "-", as in seqeval
    for bad in ("PER", "B-", "-PER", "B_PER", ""):
        with pytest.raises(ValueError, match="is neither O nor PREFIX-TYPE"):
            split_tag(bad)


def test_to_iob2_by_hand():
    # IOB1: I- starts an entity unless it continues one of its type; B- only between two such
    assert to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG", "I-ORG"], "IOB1") == \
        ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG", "I-ORG"]
    assert to_iob2(["S-PER", "B-LOC", "I-LOC", "E-LOC", "O", "S-ORG", "S-ORG"], "BIOES") == \
        ["B-PER", "B-LOC", "I-LOC", "I-LOC", "O", "B-ORG", "B-ORG"]
    iob2 = ["B-PER", "I-PER", "O", "I-LOC"]
    assert to_iob2(iob2, "IOB2") == iob2 and to_iob2((), "IOB1") == []
    with pytest.raises(ValueError, match=r"scheme 'BILOU' is not one of \('IOB1', 'IOB2', 'BIOES'\)"):
        to_iob2(iob2, "BILOU")


@st.composite
def entities(draw) -> list[tuple[str, int]]:
    """A sentence as (type or None for an O word, length) runs: what every scheme writes down."""
    return draw(st.lists(st.tuples(st.sampled_from([None, "PER", "LOC"]), st.integers(1, 3)), max_size=8))


def write(runs: list[tuple[str, int]], scheme: str) -> list[str]:
    """The runs in `scheme`, written from the definitions (not through to_iob2)."""
    tags: list[str] = []
    prev = None
    for type_, n in runs:
        if type_ is None:
            tags += ["O"] * n
        elif scheme == "IOB2":
            tags += [f"B-{type_}"] + [f"I-{type_}"] * (n - 1)
        elif scheme == "IOB1":
            tags += [f"{'B' if prev == type_ else 'I'}-{type_}"] + [f"I-{type_}"] * (n - 1)
        else:
            tags += [f"S-{type_}"] if n == 1 else [f"B-{type_}"] + [f"I-{type_}"] * (n - 2) + [f"E-{type_}"]
        prev = type_
    return tags


@FAST
@given(entities())
def test_every_scheme_converts_to_the_same_iob2(runs):
    iob2 = write(runs, "IOB2")
    assert to_iob2(write(runs, "IOB1"), "IOB1") == iob2
    assert to_iob2(write(runs, "BIOES"), "BIOES") == iob2
    assert count_violations([iob2], "IOB2") == 0


def test_count_violations():
    assert count_violations([["I-PER", "O"], ["B-PER", "I-LOC", "O", "I-LOC", "I-LOC"]], "IOB2") == 3
    assert count_violations([["B-PER", "I-PER", "B-PER", "O"]], "IOB2") == 0
    # IOB1 read as IOB1 has none; the same tags said to be IOB2 have one per entity-starting I-
    iob1 = [["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]]
    assert (count_violations(iob1, "IOB1"), count_violations(iob1, "IOB2")) == (0, 2)
    assert count_violations([["O", "E-LOC", "B-PER", "E-PER"]], "BIOES") == 1  # E- without its B-


def sentence(tokens: str, tags: str, line: int = 1, one_per_line: bool = True) -> TaggedSentence:
    return TaggedSentence(tuple(tokens.split()), tuple(tags.split()), line, one_per_line)


def test_check_scheme():
    ok = [sentence("EU rejects German", "B-ORG O B-MISC"), sentence("Peter", "I-PER", 5)]
    check_scheme(ok, "IOB2", "train.txt")
    check_scheme(ok, "IOB1", "train.txt")  # IOB1 and IOB2 tags look alike (see count_violations)
    check_scheme([sentence("in New York", "O B-LOC E-LOC"), sentence("Peter", "S-PER")], "BIOES", "x")
    check_scheme([TaggedSentence(("a",), None, 1)], "IOB2", "test.txt")
    bioes = [sentence("EU rejects", "B-ORG O", 1), sentence("in New York", "O B-LOC E-LOC", 4)]
    with pytest.raises(UserError) as err:
        check_scheme(bioes, "IOB2", "train.txt")
    assert str(err.value) == ("train.txt:6: tag 'E-LOC' (token 'York') is not a IOB2 tag (O, B-TYPE, "
                              "I-TYPE); fix the tag or set the scheme the file uses")
    with pytest.raises(UserError) as err:
        check_scheme([sentence("EU rejects", "B-ORG PER", 3, one_per_line=False)], "BIOES", "t.jsonl")
    assert str(err.value) == ("t.jsonl:3: tag 'PER' (token 'rejects') is not a BIOES tag (O, B-TYPE, "
                              "I-TYPE, E-TYPE, S-TYPE); fix the tag or set the scheme the file uses")


def test_collect_labels_order():
    rows = [sentence("Peter in Paris", "B-PER O B-LOC"), sentence("EU", "B-ORG"),
            sentence("New York Times", "B-ORG I-ORG I-ORG"), sentence("a", "O")]
    # every prefix of every type seen (I-LOC and I-PER never occur), whatever the row order
    expected = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    for seed in range(5):
        random.Random(seed).shuffle(rows)
        assert collect_labels(rows) == expected
    assert collect_labels([sentence("in New York", "O B-LOC E-LOC"), sentence("Peter", "S-PER")]) == \
        ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]
    # either BIOES-only prefix is enough to tell the scheme
    assert collect_labels([sentence("in New York", "O B-LOC E-LOC")]) == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    assert collect_labels([sentence("Peter", "S-PER")]) == ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    assert collect_labels([TaggedSentence(("a",), None, 1)]) == ["O"]


def test_check_labels():
    labels = ["O", "B-PER", "I-PER"]
    check_labels([sentence("Peter Blackburn", "B-PER I-PER")], labels, "valid.txt")
    check_labels([TaggedSentence(("EU",), None, 1)], labels, "test.txt")  # an unlabelled split has none to check
    rows = [sentence("Peter", "B-PER", 1), sentence("said EU", "O B-ORG", 3)]
    with pytest.raises(UserError) as err:
        check_labels(rows, labels, "valid.txt")
    assert str(err.value) == ("valid.txt:4: tag 'B-ORG' (token 'EU') is not one of the 3 labels "
                              "[O, B-PER, I-PER]; fix the tag or add it to the labels")
    rows = [sentence("EU rejects", "O B-ORG", 7, one_per_line=False)]
    with pytest.raises(UserError, match=r"^valid.jsonl:7: tag 'B-ORG' \(token 'rejects'\)"):
        check_labels(rows, labels, "valid.jsonl")


@needs_conll
@pytest.mark.real_data
def test_real_conll2003_is_clean_iob2():
    train, valid = read_conll(CONLL / "train.txt"), read_conll(CONLL / "valid.txt")
    assert collect_labels(train) == collect_labels(valid) == CONLL_LABELS
    check_scheme(train, "IOB2", "train.txt")
    check_labels(valid, collect_labels(train), "valid.txt")
    assert count_violations([s.tags for s in train + valid], "IOB2") == 0
    # written as IOB1 (as the original distribution is), the same tags convert back exactly
    iob1 = [[("I" + t[1:] if t.startswith("B-") and (i == 0 or tags[i - 1][2:] != t[2:]) else t)
             for i, t in enumerate(tags)] for tags in (s.tags for s in valid)]
    assert count_violations(iob1, "IOB2") == sum(t.startswith("B-") for s in valid for t in s.tags) - \
        sum(t.startswith("B-") for tags in iob1 for t in tags)
    assert [to_iob2(tags, "IOB1") for tags in iob1] == [list(s.tags) for s in valid]
