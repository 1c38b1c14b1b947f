"""Every metric a task can name, scored the way a run scores it (its kind's build_metrics, then
update_metrics batch by batch, then compute), against a value worked out by hand on predictions
where the plausible alternatives give other numbers: binary F1 vs macro, micro or the other
class's; micro vs macro accuracy; MCC vs accuracy; Pearson vs Spearman; entity-level micro F1 vs
per-type macro or per-token; SQuAD's normalised best-over-references F1 vs raw; perplexity over
shifted, unpadded targets vs per-row means. Two updates of unequal size each, so a mean of
per-batch values differs too.

The cases are generated from config.METRICS and each kind's own check: a metric some kind accepts
fails here until HAND gives its value for that kind.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from conftest import run_overrides
from tokentune.config import METRICS, SplitConfig, TaskConfig, compose, validate
from tokentune.errors import ConfigError
from tokentune.task import KINDS

# a valid task of each kind, but for its metrics
TASKS = {
    "classification": dict(labels=["0", "1"]),
    "regression": dict(labels=None),
    "causal_lm": dict(format="text"),
    "token_classification": dict(format="conll", labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]),
    "extractive_qa": dict(format="squad"),
}


def task_of(kind: str, metric: str, **changes) -> TaskConfig:
    fields = {"name": "t", "kind": kind, "splits": {"train": SplitConfig(path="a"), "validation": SplitConfig(path="b")},
              "metrics": [metric], "monitor": metric, **TASKS[kind], **changes}
    return TaskConfig(**fields)


def accepts(kind: str, metric: str) -> bool:
    assert kind in TASKS, f"task kind {kind}: add a valid task of it to TASKS and its metrics to HAND"
    try:
        task_of(kind, metric)
    except ConfigError:
        return False
    return True


ACCEPTED = [(kind, metric) for kind in KINDS for metric in METRICS if accepts(kind, metric)]


# -- classification: 10 rows, two updates (3 rows, then 7) ------------------------------------
# two classes: labels 1 1 1 1 0 0 0 0 0 0, predicted 1 1 1 0 1 1 0 0 0 0
# TP 3, FN 1, FP 2, TN 4: accuracy 7/10; F1 of class 1 = 2*3 / (2*3 + 2 + 1) = 2/3 (class 0's:
# 8/11, macro 0.697, micro 0.7); MCC = (3*4 - 2*1) / sqrt(5 * 4 * 6 * 5) = 10 / sqrt(600)
BINARY = ([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 1, 1, 0, 0, 0, 0])
# three classes: labels 0 0 0 0 0 0 1 1 2 2, predicted 0 0 0 0 1 2 1 0 2 2
# accuracy 7/10 (macro, the mean recall: (4/6 + 1/2 + 2/2) / 3 = 0.722); F1 per class 8/11, 2/4,
# 4/5, macro their mean (weighted 0.696, micro 0.7); MCC with c = 7 right of s = 10, true counts
# t = 6 2 2, predicted p = 5 2 3: (c*s - sum p*t) / sqrt((s^2 - sum p^2)(s^2 - sum t^2))
# = (70 - 40) / sqrt((100 - 38)(100 - 44))
THREE = ([0, 0, 0, 0, 0, 0, 1, 1, 2, 2], [0, 0, 0, 0, 1, 2, 1, 0, 2, 2])
# -- regression: predicted 0.1 0.2 0.3 0.4 5.0 for 1 2 3 5 4, two updates (2 rows, then 3) ----
# Spearman: ranks 1 2 3 4 5 and 1 2 3 5 4, d^2 summing to 2: 1 - 6*2 / (5 * 24) = 0.9
# Pearson: deviations -1.1 -1.0 -0.9 -0.8 3.8 and -2 -1 0 2 1: 5.4 / sqrt(18.1 * 10)
REGRESSION = ([1.0, 2.0, 3.0, 5.0, 4.0], [0.1, 0.2, 0.3, 0.4, 5.0])

HAND = {
    ("classification", "accuracy"): {"binary": 7 / 10, "three": 7 / 10},
    ("classification", "f1"): {"binary": 2 / 3, "three": (8 / 11 + 2 / 4 + 4 / 5) / 3},
    ("classification", "mcc"): {"binary": 10 / math.sqrt(600), "three": 30 / math.sqrt(62 * 56)},
    ("regression", "pearson"): {"numbers": 5.4 / math.sqrt(18.1 * 10)},
    ("regression", "spearman"): {"numbers": 0.9},
    # see perplexity_case: the three scored targets have probabilities 1/2, 1/4, 1/2
    ("causal_lm", "perplexity"): {"text": (2 * 4 * 2) ** (1 / 3)},
    # see entity_case: 4 true entities, 3 predicted, 2 right; 5 of 7 words tagged right
    ("token_classification", "precision"): {"tags": 2 / 3},
    ("token_classification", "recall"): {"tags": 2 / 4},
    ("token_classification", "f1"): {"tags": 2 * (2 / 3) * (2 / 4) / (2 / 3 + 2 / 4)},
    ("token_classification", "accuracy"): {"tags": 5 / 7},
    # see squad_case: exact 0 and 1, F1 0.8 and 1, in percent
    ("extractive_qa", "exact_match"): {"answers": 50.0},
    ("extractive_qa", "f1"): {"answers": 90.0},
}


def classification_case(scenario: str, metric: str):
    labels, predicted = {"binary": BINARY, "three": THREE}[scenario]
    n = max(labels) + 1
    task = task_of("classification", metric, labels=[f"c{i}" for i in range(n)])
    logits = torch.nn.functional.one_hot(torch.tensor(predicted), n).float() * 3 - 1
    updates = [(SimpleNamespace(logits=logits[a:b]), {"labels": torch.tensor(labels[a:b])})
               for a, b in ((0, 3), (3, 10))]
    return task, updates, None


def regression_case(scenario: str, metric: str):
    labels, predicted = REGRESSION
    updates = [(SimpleNamespace(logits=torch.tensor(predicted[a:b])[:, None]), {"labels": torch.tensor(labels[a:b])})
               for a, b in ((0, 2), (2, 5))]
    return task_of("regression", metric), updates, None


def perplexity_case(scenario: str, metric: str):
    # two rows of a two-token vocabulary, one update each; the second row's last token is padding.
    # Row 0, tokens 0 1 1: position 0 gives the next token (1) probability 1/2, position 1 gives its
    # next (1) 1/4. Row 1, tokens 1 0 <pad>: position 0 gives 0 probability 1/2; position 1 would
    # predict the padding. Scored: the three next tokens, (1 / (1/2 * 1/4 * 1/2)) ** (1/3) = 2.52;
    # per-row means 2^1.5 and 2 give 2.41 averaged, 2.38 as exp of the mean; unshifted targets or
    # the padded position (probabilities 0.9 / 0.1 everywhere else) other numbers again
    def row(probs_of_one):
        p = torch.tensor(probs_of_one)
        return torch.stack([1 - p, p], dim=-1).log()[None]

    updates = [(SimpleNamespace(logits=row([0.5, 0.25, 0.9])),
                {"input_ids": torch.tensor([[0, 1, 1]]), "attention_mask": torch.tensor([[1, 1, 1]])}),
               (SimpleNamespace(logits=row([0.5, 0.9, 0.9])),
                {"input_ids": torch.tensor([[1, 0, 0]]), "attention_mask": torch.tensor([[1, 1, 0]])})]
    return task_of("causal_lm", metric), updates, None


def entity_case(scenario: str, metric: str):
    # labels O B-PER I-PER B-LOC I-LOC (ids 0-4); one sentence per update, per sub-token:
    #   1: words "Ann Lee in Rome": true B-PER I-PER O B-LOC, predicted B-PER I-PER O O; "Lee" has a
    #      second sub-token (not a word start) predicted I-LOC, and one padding position
    #   2: words "Rome or Ann": true B-LOC O B-PER, predicted B-LOC O B-LOC
    # entities: true PER, LOC (1) and LOC, PER (2); predicted PER (1), LOC and LOC (2); right: PER
    # (1) and LOC (2). Micro precision 2/3, recall 2/4; per type F1 PER 2/3, LOC 1/2 (macro
    # 0.583). Counting the second sub-token as a word would start an I-LOC entity there.
    task = task_of("token_classification", metric)

    def sentence(true, predicted, starts):
        logits = torch.nn.functional.one_hot(torch.tensor(predicted), 5).float()[None]
        return (SimpleNamespace(logits=logits),
                {"labels": torch.tensor([true]), "word_starts": torch.tensor([starts])})

    updates = [sentence([1, 2, 2, 0, 3, -100], [1, 2, 4, 0, 0, 0], [1, 1, 0, 1, 1, 0]),
               sentence([3, 0, 1], [3, 0, 3], [1, 1, 1])]
    return task, updates, {"f1_PER": 2 / 3, "f1_LOC": 1 / 2} if metric == "f1" else {}


SQUAD = {"version": "1.1", "data": [{"title": "t", "paragraphs": [
    # predicted "the big red dog" for "red dog": normalised "big red dog", precision 2/3, recall 1,
    # F1 0.8 (0.67 without removing "the"); not exact
    {"context": "the big red dog sleeps in the barn .",
     "qas": [{"id": "q1", "question": "what sleeps ?", "answers": [{"text": "red dog", "answer_start": 8}]}]},
    # predicted "farmer": exact for the second reference (the first alone: F1 2/3, not exact)
    {"context": "a farmer feeds the cow .",
     "qas": [{"id": "q2", "question": "who feeds the cow ?",
              "answers": [{"text": "a farmer feeds", "answer_start": 0}, {"text": "farmer", "answer_start": 2}]}]},
]}]}
PREDICTED = {"q1": (0, "the big red dog"), "q2": (2, "farmer")}  # character start, text


def squad_case(scenario: str, metric: str, tmp_path, cache_dir):
    from tokentune.data.datamodule import TaskDataModule

    (tmp_path / "dev.json").write_text(json.dumps(SQUAD))
    cfg = validate(compose(run_overrides(cache_dir, tmp_path / "run") + [
        "model=bert_tiny", "task=squad", f"task.data_dir={tmp_path}", "task.splits.train.path=dev.json",
        "task.splits.validation.path=dev.json", "task.hub_dataset=null", f"task.metrics=[{metric}]",
        f"task.monitor={metric}", "data.max_length=64", "task.doc_stride=16"]))
    dm = TaskDataModule(cfg)
    dm.load()
    tensors, examples = dm.splits["validation"].tensors, dm.indices["validation"]
    updates = []
    for row in range(len(tensors["offsets"]) - 1):  # one window per question, one update each
        a, b = tensors["offsets"][row].item(), tensors["offsets"][row + 1].item()
        starts, ends = tensors["char_starts"][a:b].tolist(), tensors["char_ends"][a:b].tolist()
        start, text = PREDICTED[examples[tensors["window_example"][row].item()].id]
        start_logits, end_logits = torch.zeros(1, b - a), torch.zeros(1, b - a)
        start_logits[0, starts.index(start)] = end_logits[0, ends.index(start + len(text))] = 10.0
        batch = {"row": tensors["row"][row:row + 1], "context_mask": tensors["context_mask"][a:b][None]}
        updates.append((SimpleNamespace(start_logits=start_logits, end_logits=end_logits), batch))
    return cfg.task, updates, None, dm


CASES = {"classification": classification_case, "regression": regression_case, "causal_lm": perplexity_case,
         "token_classification": entity_case, "extractive_qa": squad_case}


@pytest.mark.parametrize("kind, metric", ACCEPTED, ids=[f"{k}-{m}" for k, m in ACCEPTED])
def test_each_metric_is_the_hand_computed_value(kind, metric, tmp_path, cache_dir):
    assert (kind, metric) in HAND, (f"task.kind={kind} accepts metric {metric}: give HAND its value, "
                                    "worked out by hand on the case's predictions")
    for scenario, want in HAND[kind, metric].items():
        if kind == "extractive_qa":
            task, updates, extra, dm = squad_case(scenario, metric, tmp_path, cache_dir)
        else:
            (task, updates, extra), dm = CASES[kind](scenario, metric), None
        k = KINDS[kind]
        metrics = k.build_metrics(task)
        for out, batch in updates:
            k.update_metrics(metrics, out, batch)
        k.bind_metrics(metrics, dm, "validation")
        got = {name: value.item() for name, value in metrics.compute().items()}
        assert got[metric] == pytest.approx(want, abs=1e-6), scenario
        for name, value in (extra or {}).items():
            assert got[name] == pytest.approx(value, abs=1e-6), name


def test_a_kind_refuses_the_metrics_of_another_in_one_line():
    # a correlation of class ids failed inside torchmetrics at the first validation, an accuracy
    # of numbers was 0: both composed
    with pytest.raises(ConfigError) as err:
        task_of("classification", "accuracy", metrics=["accuracy", "pearson"])
    assert str(err.value) == "task.metrics: 'pearson' is not a classification metric ('accuracy', 'f1', 'mcc')"
    with pytest.raises(ConfigError) as err:
        task_of("regression", "pearson", metrics=["pearson", "accuracy"])
    assert str(err.value) == "task.metrics: 'accuracy' is not a regression metric ('pearson', 'spearman')"
    assert sorted(ACCEPTED) == sorted(HAND)  # and nothing in HAND is refused
