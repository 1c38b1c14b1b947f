"""Entity-level scores: hand-computed cases, seqeval's default (conlleval) mode against its strict
one, other schemes, and real CoNLL-2003 predictions counted as conlleval counts them."""
from __future__ import annotations

import random
from collections import Counter

import pytest
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from tokentune.task.token_classification.conll import read_conll
from tokentune.task.token_classification.metrics import entity_scores
from tokentune.task.token_classification.tags import to_iob2

from .conftest import CONLL, needs_conll


def scores(p: float, r: float, f: float, n: int) -> dict:
    return {"precision": pytest.approx(p), "recall": pytest.approx(r), "f1": pytest.approx(f), "support": n}


def test_micro_average_over_entities_differs_from_macro():
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O", "B-PER", "O"], ["B-ORG", "I-ORG", "O", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-PER", "O", "B-PER", "O"], ["B-ORG", "O", "O", "O"]]
    # 5 true entities, 4 predicted, 3 of them right (the PERs); ORG's wrong boundary is both a
    # false positive and a false negative, LOC a false negative
    out = entity_scores(true, pred)
    assert out == {"precision": pytest.approx(3 / 4), "recall": pytest.approx(3 / 5),
                   "f1": pytest.approx(2 * 3 / 4 * 3 / 5 / (3 / 4 + 3 / 5)),  # 2/3
                   "per_type": {"LOC": scores(0, 0, 0, 1), "ORG": scores(0, 0, 0, 1), "PER": scores(1, 1, 1, 3)},
                   "accuracy": pytest.approx(10 / 12)}
    macro_f1 = sum(t["f1"] for t in out["per_type"].values()) / 3
    assert macro_f1 == pytest.approx(1 / 3) != out["f1"]


def test_wrong_type_or_boundary_is_a_false_positive_and_a_false_negative():
    assert entity_scores([["B-PER", "I-PER", "O"]], [["B-ORG", "I-ORG", "O"]]) == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0,
        "per_type": {"ORG": scores(0, 0, 0, 0), "PER": scores(0, 0, 0, 1)}, "accuracy": pytest.approx(1 / 3)}
    out = entity_scores([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "O", "O", "B-LOC"]])
    assert (out["precision"], out["recall"]) == (0.5, 0.5) and out["per_type"]["PER"] == scores(0, 0, 0, 1)


def test_default_mode_reads_tags_as_conlleval_not_strictly():
    # An I-PER after O starts an entity, as conlleval reads it: this PER is found. seqeval's
    # strict mode finds no entity in the prediction at all.
    true, pred = [["B-PER", "I-PER", "O"]], [["I-PER", "I-PER", "O"]]
    assert entity_scores(true, pred)["f1"] == 1.0
    assert f1_score(true, pred, mode="strict", scheme=IOB2) == 0.0
    # B-PER I-LOC: conlleval sees PER and LOC (the type change starts one), strict sees PER only
    true, pred = [["B-PER", "B-LOC"]], [["B-PER", "I-LOC"]]
    assert entity_scores(true, pred)["f1"] == 1.0
    assert f1_score(true, pred, mode="strict", scheme=IOB2) == pytest.approx(2 / 3)


@pytest.mark.parametrize("scheme, true, pred", [
    # IOB1: adjacent entities of one type are told apart by B-; two PERs against one
    ("IOB1", [["I-PER", "B-PER", "O", "I-LOC"]], [["I-PER", "I-PER", "O", "I-LOC"]]),
    ("BIOES", [["S-PER", "S-PER", "O", "B-LOC", "E-LOC"]], [["B-PER", "E-PER", "O", "B-LOC", "E-LOC"]]),
])
def test_other_schemes_score_as_their_iob2(scheme, true, pred):
    out = entity_scores(true, pred, scheme=scheme)
    iob2 = entity_scores([to_iob2(t, scheme) for t in true], [to_iob2(p, scheme) for p in pred])
    assert out.pop("accuracy") and iob2.pop("accuracy") and out == iob2  # (accuracy: the next test)
    assert (out["precision"], out["recall"]) == (pytest.approx(1 / 2), pytest.approx(1 / 3))


def test_malformed_bioes_is_read_as_its_iob2():
    # S-PER I-PER is not BIOES; as IOB2 (B-PER I-PER) it is one two-word PER. seqeval alone, like
    # conlleval, would read two one-word PERs.
    true, pred = [["B-PER", "E-PER", "O"]], [["S-PER", "I-PER", "O"]]
    assert entity_scores(true, pred, scheme="BIOES")["f1"] == 1.0
    assert f1_score(true, pred) == 0.0


def test_accuracy_is_on_the_tags_as_given():
    # S-PER and B-PER are one IOB2 tag, but a BIOES tagger that wrote B-PER got the word wrong
    out = entity_scores([["S-PER", "O"]], [["B-PER", "O"]], scheme="BIOES")
    assert (out["f1"], out["accuracy"]) == (1.0, 0.5)


def test_no_entities_score_zero():
    assert entity_scores([["O", "O"]], [["O", "O"]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                                         "per_type": {}, "accuracy": 1.0}


@pytest.mark.parametrize("true, pred, message", [
    ([], [], "no sentences to score"),
    ([["O"]], [["O"], ["O"]], "1 true sentences but 2 predicted"),
    ([["O"], ["O", "B-PER"]], [["O"], ["O"]], "sentence 1: 2 true tags but 1 predicted"),
])
def test_mismatched_input(true, pred, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        entity_scores(true, pred)


def conlleval_chunks(tags: list[str]) -> set[tuple[int, int, str]]:
    """(start, end, type) of each chunk as conlleval.pl reads B/I/O tags: B-X starts one, and so
    does an I-X that does not continue a chunk of type X; anything else ends it."""
    chunks, start, type_ = set(), 0, None
    for i, tag in enumerate(tags + ["O"]):
        prefix, t = (tag[0], tag[2:]) if tag != "O" else ("O", None)
        continues = prefix == "I" and t == type_
        if type_ is not None and not continues:
            chunks.add((start, i, type_))
            type_ = None
        if prefix != "O" and not continues:
            start, type_ = i, t
    return chunks


def corrupt(tags: tuple[str, ...], rng: random.Random) -> list[str]:
    """A tagger's typical mistakes, each on about 1 word in 20: a wrong type, a missed word, a
    spurious entity, an entity split in two."""
    out = list(tags)
    for i, tag in enumerate(out):
        if rng.random() < 0.05:
            kind = rng.randrange(4)
            if tag != "O" and kind == 0:
                out[i] = tag[:2] + rng.choice([t for t in ("PER", "ORG", "LOC", "MISC") if t != tag[2:]])
            elif tag != "O" and kind == 1:
                out[i] = "O"
            elif tag == "O" and kind == 2:
                out[i] = "B-MISC"
            elif tag.startswith("I-"):
                out[i] = "B-" + tag[2:]
    return out


@needs_conll
@pytest.mark.real_data
def test_real_conll2003_against_a_conlleval_count():
    valid = read_conll(CONLL / "valid.txt")
    true = [list(s.tags) for s in valid]
    rng = random.Random(0)
    pred = [corrupt(s.tags, rng) for s in valid]
    found = [(i, *c) for i, tags in enumerate(true) for c in conlleval_chunks(tags)]
    guessed = [(i, *c) for i, tags in enumerate(pred) for c in conlleval_chunks(tags)]
    correct = set(found) & set(guessed)
    words = [(t, p) for ts, ps in zip(true, pred) for t, p in zip(ts, ps)]
    out = entity_scores(true, pred)
    p, r = len(correct) / len(guessed), len(correct) / len(found)
    assert (out["precision"], out["recall"], out["f1"]) == (pytest.approx(p), pytest.approx(r),
                                                          pytest.approx(2 * p * r / (p + r)))
    assert out["accuracy"] == pytest.approx(sum(t == p for t, p in words) / len(words))
    for type_, got in out["per_type"].items():
        n_true = sum(c[3] == type_ for c in found)
        n_pred, n_correct = sum(c[3] == type_ for c in guessed), sum(c[3] == type_ for c in correct)
        tp, tr = n_correct / n_pred, n_correct / n_true
        assert got == scores(tp, tr, 2 * tp * tr / (tp + tr), n_true)
    # the gold tags score 1 everywhere, with the entity counts of the split as support
    gold = entity_scores(true, true)
    assert (gold["f1"], gold["accuracy"]) == (1.0, 1.0)
    assert {t: s["support"] for t, s in gold["per_type"].items()} == \
        Counter(t[2:] for tags in true for t in tags if t.startswith("B-")) == \
        {"LOC": 1837, "PER": 1842, "ORG": 1341, "MISC": 922}
    assert 0.85 < out["f1"] < 0.95  # (the corruption is neither trivial nor total)
