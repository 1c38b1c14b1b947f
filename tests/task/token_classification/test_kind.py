"""kind: token_classification end to end: train, score by entity, export, pipeline(), predict.

The tiny random-init BERT learns the synthetic corpus (tags follow from the words) to entity F1
above 0.9 in about 100 steps, so the scores, the exported labels and the predicted entities are
those of a model that learned, not of one at chance.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from conftest import ROOT, run_cli, run_overrides
from task.token_classification.synthetic import LABELS, overrides, sentences, task_folder, write_conll
from tokentune.config import SplitConfig, compose as compose_train, validate
from tokentune.errors import ConfigError
from tokentune.run.fit import fit

LEARNS = ("model=bert_tiny", "trainer.max_epochs=4", "optimizer.lr=2e-3", "data.batch_size=16")


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory, cache_dir):
    """A full fine-tune on the synthetic corpus, with an unlabelled test split: (run dir, results)."""
    folder = task_folder(tmp_path_factory.mktemp("ner-data"), test=12)
    run_dir = tmp_path_factory.mktemp("ner-run")
    dcfg = compose_train(run_overrides(cache_dir, run_dir) + overrides(folder) + list(LEARNS))
    with open_dict(dcfg):
        dcfg.task.splits["test"] = SplitConfig(path="test.txt")
    return folder, run_dir, fit(dcfg)


def test_learns_and_reports_entity_scores_per_type(ner_run):
    _, _, results = ner_run
    val = results["validation"]
    assert val["val/f1"] > 0.9
    assert {k for k in val if k.startswith("val/f1_")} == {"val/f1_PER", "val/f1_LOC", "val/f1_ORG"}
    assert set(val) >= {"val/precision", "val/recall", "val/accuracy", "val/loss"}
    # micro F1 is the harmonic mean of micro precision and recall (not the mean of per-type F1s)
    p, r = val["val/precision"], val["val/recall"]
    assert val["val/f1"] == pytest.approx(2 * p * r / (p + r), abs=1e-6)
    assert results["data"] == {"train": {"sentences": 400, "truncated_words": 0, "unaligned_words": 0},
                               "validation": {"sentences": 80, "truncated_words": 0, "unaligned_words": 0},
                               "test": {"sentences": 12, "truncated_words": 0, "unaligned_words": 0}}


def test_an_unlabelled_split_gets_a_conll_file_of_predicted_tags(ner_run):
    folder, run_dir, results = ner_run
    written = Path(results["test_predictions"]["test"])
    assert written == run_dir / "conll2003-test.conll"
    got = [block.split("\n") for block in written.read_text().strip("\n").split("\n\n")]
    truth = sentences(12, 2)
    assert [[line.split("\t")[0] for line in s] for s in got] == [[w for w, _ in s] for s in truth]
    tags = [line.split("\t")[1] for s in got for line in s]
    gold = [t for s in truth for _, t in s]
    assert sum(a == b for a, b in zip(tags, gold)) / len(gold) > 0.9


def test_the_export_is_a_token_classification_folder_that_pipeline_reads(ner_run):
    from transformers import AutoModelForTokenClassification, pipeline

    _, run_dir, _ = ner_run
    model = AutoModelForTokenClassification.from_pretrained(run_dir / "model")
    assert model.config.id2label == dict(enumerate(LABELS))  # the order the run trained with
    # its labels are on each word's first sub-token ("acme" is "ac", "##me"): "first" reads them there
    tagger = pipeline("token-classification", model=str(run_dir / "model"), aggregation_strategy="first")
    text = "alice visited new york with acme corp"
    found = [(e["entity_group"], text[e["start"]:e["end"]]) for e in tagger(text)]
    assert found == [("PER", "alice"), ("LOC", "new york"), ("ORG", "acme corp")]
    card = (run_dir / "model" / "README.md").read_text()
    assert 'pipeline("token-classification", model="path/to/this/folder", aggregation_strategy="first")' in card
    assert "conll2003 (token_classification, IOB2 tags: O, B-PER" in card


def test_labelling_every_sub_token_makes_the_simple_aggregation_right(tmp_path, cache_dir):
    from transformers import pipeline

    folder = task_folder(tmp_path / "data")
    results = fit(compose_train(run_overrides(cache_dir, tmp_path / "run") + overrides(folder)
                                + [*LEARNS, "task.label_all_subtokens=true"]))
    assert results["validation"]["val/f1"] > 0.9  # scored per word all the same
    tagger = pipeline("token-classification", model=results["model_dir"], aggregation_strategy="simple")
    text = "alice visited new york with acme corp"
    assert [(e["entity_group"], text[e["start"]:e["end"]]) for e in tagger(text)] == [
        ("PER", "alice"), ("LOC", "new york"), ("ORG", "acme corp")]
    assert 'aggregation_strategy="simple")' in (Path(results["model_dir"]) / "README.md").read_text()


def test_raw_text_predict_returns_each_entity_with_its_character_span(ner_run, tmp_path, cache_dir):
    _, run_dir, _ = ner_run
    text = "yesterday  alice visited new york"  # two spaces: spans are the raw text's own
    out = run_cli("-m", "tokentune.cli_predict", f"ckpt_path={run_dir}/checkpoints/best.ckpt",
                  f"text={text}", f"paths.output_dir={tmp_path}", f"paths.cache_dir={cache_dir}",
                  "accelerator=cpu")
    assert out.returncode == 0, out.stderr[-2000:]
    (row,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert row["text"] == text
    spans = [(e["entity"], e["text"], e["start"], e["end"]) for e in row["entities"]]
    assert spans == [("PER", "alice", 11, 16), ("LOC", "new york", 25, 33)]
    assert all(text[e["start"]:e["end"]] == e["text"] and 1 / len(LABELS) < e["score"] <= 1 for e in row["entities"])


@pytest.mark.parametrize("method", ["adapter", "lora", "prefix"])
def test_each_method_trains_the_tagger_and_only_its_own_weights(ner_run, tmp_path, cache_dir, method):
    """From the trained tagger's export as the base (a random base gives a PEFT method nothing
    to adapt): a few steps on what the method trains keep it tagging, the head trains."""
    folder, run_dir, _ = ner_run
    dcfg = compose_train(run_overrides(cache_dir, tmp_path) + overrides(folder) + [
        "model=bert_tiny", f"model.pretrained={run_dir}/model", f"finetune={method}",
        "trainer.max_epochs=1", "trainer.limit_train_batches=6", "data.batch_size=16", "export=false"])
    results = fit(dcfg)
    p = results["parameters"]
    assert 0 < p["trainable"] < p["total"] / 2
    assert results["validation"]["val/f1"] > 0.8


def test_a_tag_outside_the_label_list_stops_in_one_line_naming_file_and_line(tmp_path, cache_dir):
    folder = task_folder(tmp_path / "data", train=5, validation=3)
    rows = sentences(3, 1)
    rows[1][0] = (rows[1][0][0], "B-DATE")
    write_conll(folder / "valid.txt", rows)
    line = len(rows[0]) + 2  # sentence 1's lines, its blank line, then this token
    out = run_cli("train.py", *run_overrides(cache_dir, tmp_path / "run"), *overrides(folder), "model=bert_tiny")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith(f"error: {folder / 'valid.txt'}:{line}: ")
    assert "B-DATE" in out.stderr and "Traceback" not in out.stderr


def test_packing_is_refused_with_the_reason(compose, tmp_path):
    with pytest.raises(ConfigError, match=r"^data.packing: a packed row feeds a sentence head"):
        validate(compose(*overrides(tmp_path), "model=bert_tiny", "data.packing=true"))


@pytest.mark.parametrize(("key", "value", "message"), [
    ("task.tag_scheme", "BILOU", "task.tag_scheme: 'BILOU' is not one of ('IOB1', 'IOB2', 'BIOES')"),
    ("task.format", "tsv", "task.format: 'tsv' is not a format for tagged sentences ('conll', 'jsonl', 'hub')"),
    ("task.metrics", "[mcc]", "task.metrics: 'mcc' is not a token-classification metric"),
    ("task.labels", "[B-PER,I-PER]", "task.labels: the label list needs the outside tag 'O'"),
])
def test_each_schema_check_refuses_its_bad_value(compose, tmp_path, key, value, message):
    with pytest.raises(ConfigError) as err:
        validate(compose(*overrides(tmp_path), "model=bert_tiny", f"{key}={value}", "task.monitor=loss"))
    assert str(err.value).startswith(message)


def test_the_label_list_is_collected_from_the_train_split_when_the_task_gives_none(tmp_path, cache_dir):
    from tokentune.data.datamodule import TaskDataModule

    folder = task_folder(tmp_path / "data", train=40, validation=8)
    cfg = validate(compose_train(run_overrides(cache_dir, tmp_path) + overrides(folder)
                                 + ["model=bert_tiny", "task.labels=null"]))
    dm = TaskDataModule(cfg)
    dm.prepare_data()
    assert cfg.task.labels == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    labels = dm.splits["train"].tensors["token_labels"]
    assert set(labels.tolist()) - {-100} == set(range(len(cfg.task.labels)))


def test_a_resumed_tagger_ends_bit_identical_to_an_uninterrupted_one(ner_run, tmp_path, cache_dir):
    from callbacks import whole_and_resumed

    folder, _, _ = ner_run
    (whole, whole_record), (resumed, record) = whole_and_resumed(
        cache_dir, tmp_path, overrides(folder) + [*LEARNS, "callbacks.every_n_train_steps=10", "export=false"],
        crash_at=57)
    assert record.batches == whole["steps"] - 50
    assert all(torch.equal(v, whole_record.weights[k]) for k, v in record.weights.items())
    assert resumed["validation"] == whole["validation"] and whole["validation"]["val/f1"] > 0.9


def test_bf16_mixed_precision_trains_the_tagger(ner_run, tmp_path, cache_dir):
    folder, _, _ = ner_run
    results = fit(compose_train(run_overrides(cache_dir, tmp_path) + overrides(folder)
                                + [*LEARNS, "trainer.precision=bf16-mixed", "export=false"]))
    assert results["validation"]["val/f1"] > 0.9


def test_a_sweep_is_collected_on_entity_f1(ner_run, tmp_path, cache_dir):
    from tokentune.sweep.collect import collect

    folder, _, _ = ner_run
    sweep = tmp_path / "sweep"
    done = run_cli("train.py", "-m", *overrides(folder), *LEARNS, "trainer.max_epochs=1", "optimizer.lr=1e-3,2e-3",
                   "export=false", "callbacks.progress_bar=none", f"paths.cache_dir={cache_dir}",
                   f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = collect(sweep, None, None)
    assert summary.table.metric == "validation/f1"
    assert [row.group["optimizer.lr"] for row in summary.table.rows] == ["0.001", "0.002"]  # as Hydra records them
    assert all("validation/f1_PER" in row.metrics for row in summary.table.rows)
