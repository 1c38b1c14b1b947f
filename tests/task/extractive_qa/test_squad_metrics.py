"""The official SQuAD scores: hand-computed cases where exact match and F1 part, v2.0's
HasAns/NoAns split and best threshold, and the official scripts' logic (official.py) against
ours on the shipped excerpts."""
from __future__ import annotations

import json

import pytest

from task.extractive_qa import official
from task.extractive_qa.conftest import SQUAD, needs_squad
from tokentune.task.extractive_qa.squad_metrics import normalize_answer, scores_v1, scores_v2


def test_normalisation_drops_case_punctuation_articles_and_extra_whitespace():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("Theory") == "theory"  # an article only as a whole word


def test_v1_exact_match_and_f1_part_where_a_prediction_is_partly_right():
    refs = {"a": ["the Denver Broncos"], "b": ["Denver Broncos"], "c": ["Santa Clara", "Levi's Stadium"]}
    preds = {"a": "Denver Broncos", "b": "Broncos", "c": "Levi's Stadium in Santa Clara"}
    # a: equal once normalised; b: 1 of 2 gold tokens, precision 1 → F1 2/3;
    # c: 2 of 5 predicted tokens against either reference (recall 1) → F1 4/7, the best of the two
    got = scores_v1(refs, preds)
    assert got["exact_match"] == pytest.approx(100 / 3)
    assert got["f1"] == pytest.approx(100 * (1 + 2 / 3 + 4 / 7) / 3)
    # a question without a prediction counts 0, as evaluate-v1.1.py counts it
    assert scores_v1(refs, {"a": "Denver Broncos"}) == pytest.approx({"exact_match": 100 / 3, "f1": 100 / 3})


def test_v2_splits_answerable_from_unanswerable_and_finds_the_best_threshold():
    refs = {"a": ["Denver Broncos"], "b": ["Carolina Panthers"], "c": [], "d": []}
    preds = {"a": "Broncos", "b": "", "c": "", "d": "Gold Coast"}  # b and c answered with the null answer
    spans = {"a": "Broncos", "b": "Carolina Panthers", "c": "blue", "d": "Gold Coast"}
    margins = {"a": -2.0, "b": -1.5, "c": 3.0, "d": -1.0}  # null score minus the best span's
    got = scores_v2(refs, preds, spans, margins)
    assert got["exact_match"] == pytest.approx(25.0)  # c only
    assert got["f1"] == pytest.approx(100 * (2 / 3 + 1) / 4)
    assert (got["HasAns_exact"], got["HasAns_f1"]) == pytest.approx((0.0, 100 * (2 / 3) / 2))
    assert (got["NoAns_exact"], got["NoAns_f1"]) == pytest.approx((50.0, 50.0))
    # answering nothing scores c and d (2 of 4); answering in rising margin order adds a (F1 2/3),
    # then b (1), then d (-1) and c (-1): the best stops after b, at b's margin
    assert (got["best_f1"], got["best_f1_thresh"]) == pytest.approx((100 * (2 + 2 / 3 + 1) / 4, -1.5))
    assert (got["best_exact"], got["best_exact_thresh"]) == pytest.approx((75.0, -1.5))


def _predictions(dataset) -> tuple[dict, dict]:
    """Answers of every sort for each question of a dataset: a reference, part of one, the null
    answer, a wrong word of the context; and a margin for each."""
    preds, margins = {}, {}
    n = 0
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                gold = qa["answers"][0]["text"] if qa["answers"] else qa.get("plausible_answers", [{"text": "x"}])[0]["text"]
                preds[qa["id"]] = [gold, gold.split()[0], "", p["context"].split()[n % 7], f"the {gold}"][n % 5]
                margins[qa["id"]] = ((n * 37) % 11) - 5.0
                n += 1
    return preds, margins


@needs_squad
@pytest.mark.parametrize("name", ["dev-v1.1.json", "dev-v2.0.json", "train-v1.1.json"])
def test_the_official_scripts_logic_scores_the_excerpts_as_ours_does(name):
    from omegaconf import OmegaConf

    from tokentune.config import TaskConfig, SplitConfig
    from tokentune.task.extractive_qa.squad import read_qa

    dataset = json.loads((SQUAD / name).read_text())["data"]
    v2 = "v2.0" in name
    task = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TaskConfig), {
        "name": "squad", "kind": "extractive_qa", "format": "squad", "data_dir": str(SQUAD),
        "splits": {"train": SplitConfig(path=name)}, "metrics": ["f1"], "monitor": "f1", "version_2": v2}))
    refs = {e.id: [t for t, _ in e.answers] for e in read_qa(task, "train")}
    preds, margins = _predictions(dataset)
    if not v2:
        assert scores_v1(refs, preds) == pytest.approx(official.evaluate_v1(dataset, preds))
        return
    theirs = official.evaluate_v2(dataset, preds, margins, na_prob_thresh=float("inf"))
    ours = scores_v2(refs, preds, preds, margins)
    assert ours == pytest.approx({"exact_match": theirs["exact"], "f1": theirs["f1"],
                                  **{k: v for k, v in theirs.items() if k not in ("exact", "f1") and "total" not in k}})
    assert theirs["NoAns_total"] == 112  # the excerpt's unanswerable questions, all read as such
