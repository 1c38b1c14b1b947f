"""kind: extractive_qa end to end on the synthetic set: train, score, the official predictions
file, the export (read by transformers alone, answering as the run did), raw-text predict, the PEFT methods, a built
vocabulary, v2.0's null answers, and evaluation without host syncs per batch.

The tiny random-init BERT learns the synthetic set (contexts cut into 2-3 windows of 48 tokens)
to F1 100 in about 75 steps, so the answers compared are those of a model that learned.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli, run_overrides
from task.extractive_qa import official
from task.extractive_qa.synthetic import overrides, task_folder
from tokentune.config import compose as compose_train
from tokentune.run.fit import fit

LEARNS = ("model=bert_tiny", "trainer.max_epochs=3", "optimizer.lr=2e-3", "data.batch_size=16")


@pytest.fixture(scope="module")
def qa_run(tmp_path_factory, cache_dir):
    folder = task_folder(tmp_path_factory.mktemp("qa-data"))
    run_dir = tmp_path_factory.mktemp("qa-run")
    return folder, run_dir, fit(compose_train(run_overrides(cache_dir, run_dir) + overrides(folder) + list(LEARNS)))


def test_learns_and_reports_exact_match_and_f1(qa_run):
    _, _, results = qa_run
    val = results["validation"]
    assert val["val/exact_match"] > 90 and val["val/f1"] >= val["val/exact_match"]
    assert set(val) == {"val/exact_match", "val/f1", "val/loss"}  # v1.1: no null-answer scores
    assert results["data"]["validation"]["questions"] == 60
    assert results["data"]["train"]["windows"] > 400  # contexts longer than a window
    assert results["data"]["train"]["answers_in_no_window"] == 0


def test_the_predictions_file_is_the_official_json_the_official_script_scores_the_same(qa_run):
    folder, run_dir, results = qa_run
    written = Path(results["validation_predictions"])
    assert written == run_dir / "squad-validation-predictions.json"
    preds = json.loads(written.read_text())
    dataset = json.loads((folder / "dev.json").read_text())["data"]
    assert set(preds) == {qa["id"] for p in dataset[0]["paragraphs"] for qa in p["qas"]}
    theirs = official.evaluate_v1(dataset, preds)
    assert theirs["exact_match"] == pytest.approx(results["validation"]["val/exact_match"], abs=1e-4)
    assert theirs["f1"] == pytest.approx(results["validation"]["val/f1"], abs=1e-4)


def hf_answers(folder, paragraphs, *, max_length=48, stride=16, max_answer_len=30) -> dict[str, str]:
    """HF run_qa's recipe on a model folder, transformers alone: windows, then the best start +
    end logit over context tokens across a question's windows."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    model, tok = AutoModelForQuestionAnswering.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    out = {}
    for p in paragraphs:
        qa = p["qas"][0]
        enc = tok(qa["question"], p["context"], truncation="only_second", max_length=max_length, stride=stride,
                  return_overflowing_tokens=True, return_offsets_mapping=True, padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                           token_type_ids=enc["token_type_ids"])
        best = None
        for w in range(len(enc["input_ids"])):
            ctx = [i for i, s in enumerate(enc.sequence_ids(w)) if s == 1]
            for s in ctx:
                for e in ctx:
                    if s <= e < s + max_answer_len:
                        score = float(logits.start_logits[w, s] + logits.end_logits[w, e])
                        if best is None or score > best[0]:
                            offsets = enc["offset_mapping"][w]
                            best = (score, int(offsets[s][0]), int(offsets[e][1]))
        out[qa["id"]] = p["context"][best[1]:best[2]]
    return out


def test_the_export_is_a_question_answering_folder_that_answers_as_the_run_did(qa_run):
    from transformers import AutoModelForQuestionAnswering
    from transformers.pipelines import SUPPORTED_TASKS

    folder, run_dir, results = qa_run
    assert type(AutoModelForQuestionAnswering.from_pretrained(run_dir / "model")).__name__ == "BertForQuestionAnswering"
    preds = json.loads(Path(results["validation_predictions"]).read_text())
    paragraphs = json.loads((folder / "dev.json").read_text())["data"][0]["paragraphs"]
    assert hf_answers(run_dir / "model", paragraphs) == preds
    card = (run_dir / "model" / "README.md").read_text()
    if "question-answering" in SUPPORTED_TASKS:  # transformers < 5
        from transformers import pipeline

        assert 'pipeline("question-answering", model="path/to/this/folder", doc_stride=16, max_answer_len=30)' in card
        qa = pipeline("question-answering", model=str(run_dir / "model"), doc_stride=16, max_answer_len=30, max_seq_len=48)
        got = {p["qas"][0]["id"]: qa(question=p["qas"][0]["question"], context=p["context"])["answer"] for p in paragraphs}
        assert sum(got[q] == preds[q] for q in preds) >= 0.95 * len(preds)
    else:  # transformers 5 removed the pipeline: the card shows the Auto classes
        assert 'model = AutoModelForQuestionAnswering.from_pretrained("path/to/this/folder")' in card
        assert "max_length=48, stride=16" in card


def span_probability(folder, question, context, start, end) -> float:
    """pipeline("question-answering")'s score of a span in a context one window holds: the start
    probability of its first token times the end probability of its last, each a softmax over the
    context tokens and the null position."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    model, tok = AutoModelForQuestionAnswering.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    enc = tok(question, context, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].tolist()
    keep = torch.tensor([i == 0 or s == 1 for i, s in enumerate(enc.sequence_ids(0))])
    with torch.no_grad():
        out = model(**enc)
    start_p, end_p = (logits[0].masked_fill(~keep, float("-inf")).softmax(-1) for logits in (out.start_logits, out.end_logits))
    context_tokens = [i for i, s in enumerate(enc.sequence_ids(0)) if s == 1]
    first = next(i for i in context_tokens if offsets[i][0] == start)
    last = next(i for i in context_tokens if offsets[i][1] == end)
    return float(start_p[first] * end_p[last])


def test_raw_text_predict_returns_the_answer_its_span_and_score(qa_run, tmp_path, cache_dir):
    _, run_dir, _ = qa_run
    context = "the cow eats grass at noon . the fox is purple .  a farmer feeds the cow ."
    out = run_cli("-m", "tokentune.cli_predict", f"ckpt_path={run_dir}/checkpoints/best.ckpt",
                  "question=what colour is the fox ?", f"context={context}",
                  f"paths.output_dir={tmp_path}", f"paths.cache_dir={cache_dir}", "accelerator=cpu")
    assert out.returncode == 0, out.stderr[-2000:]
    (row,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert (row["answer"], row["start"], row["end"]) == ("purple", context.index("purple"),
                                                         context.index("purple") + 6)
    assert 0.05 < row["score"] <= 1  # start times end probability, far above a random pair of ~20 tokens
    assert row["score"] == pytest.approx(span_probability(run_dir / "model", "what colour is the fox ?", context,
                                                          row["start"], row["end"]), rel=1e-4)
    lines = tmp_path / "in.jsonl"
    lines.write_text("".join(json.dumps({"question": f"what colour is the {a} ?", "context": f"the {a} is {c} ."}) + "\n"
                             for a, c in (("owl", "green"), ("pig", "black"))))
    out = run_cli("-m", "tokentune.cli_predict", f"ckpt_path={run_dir}/checkpoints/best.ckpt", f"input={lines}",
                  f"paths.output_dir={tmp_path}", f"paths.cache_dir={cache_dir}", "accelerator=cpu")
    assert out.returncode == 0, out.stderr[-2000:]
    assert [json.loads(line)["answer"] for line in out.stdout.splitlines()] == ["green", "black"]


@pytest.mark.parametrize("method", ["lora", "adapter", "prefix"])
def test_each_method_trains_the_reader_and_only_its_own_weights(qa_run, tmp_path, cache_dir, method):
    """From the trained reader's export as the base (a random base gives a PEFT method nothing
    to adapt): a few steps on what the method trains keep it answering."""
    folder, run_dir, _ = qa_run
    results = fit(compose_train(run_overrides(cache_dir, tmp_path) + overrides(folder) + [
        "model=bert_tiny", f"model.pretrained={run_dir}/model", f"finetune={method}",
        "trainer.max_epochs=1", "trainer.limit_train_batches=6", "data.batch_size=16", "export=false"]))
    p = results["parameters"]
    assert 0 < p["trainable"] < p["total"] / 2
    assert results["validation"]["val/f1"] > 80


@pytest.mark.parametrize("tokenizer", ["wordpiece32k", "trim"])
def test_a_vocabulary_built_or_trimmed_on_questions_and_contexts_learns_as_well(tmp_path, cache_dir, tokenizer):
    folder = task_folder(tmp_path / "data")
    results = fit(compose_train(run_overrides(cache_dir, tmp_path / "run") + overrides(folder)
                                + [*LEARNS, f"tokenizer={tokenizer}", "trainer.max_epochs=4", "export=false"]))
    assert results["vocabulary"]["vocab_size"] < 200  # the synthetic set's few words
    assert results["validation"]["val/f1"] > 90


@pytest.mark.parametrize("model", ["gpt2_tiny", "llama_tiny"])
def test_a_decoder_trains_its_question_answering_head_and_exports_it(tmp_path, cache_dir, model):
    from transformers import AutoModelForQuestionAnswering

    folder = task_folder(tmp_path / "data", train=64, validation=12)
    results = fit(compose_train(run_overrides(cache_dir, tmp_path / "run") + overrides(folder, version_2=True)
                                + [f"model={model}", "trainer.max_epochs=1", "data.max_length=96"]))
    assert {"val/f1", "val/HasAns_f1", "val/best_f1_thresh"} <= set(results["validation"])
    loaded = AutoModelForQuestionAnswering.from_pretrained(results["model_dir"])
    assert type(loaded).__name__.endswith("ForQuestionAnswering")


def test_v2_answers_nothing_where_the_context_says_nothing(tmp_path, cache_dir):
    folder = task_folder(tmp_path / "data", impossible=0.4)
    results = fit(compose_train(run_overrides(cache_dir, tmp_path / "run") + overrides(folder, version_2=True)
                                + [*LEARNS, "trainer.max_epochs=4"]))
    val = results["validation"]
    assert val["val/HasAns_f1"] > 80 and val["val/NoAns_exact"] > 80
    assert val["val/best_f1"] >= val["val/f1"]
    preds = json.loads(Path(results["validation_predictions"]).read_text())
    dataset = json.loads((folder / "dev.json").read_text())["data"]
    theirs = official.evaluate_v2(dataset, preds)
    assert (theirs["exact"], theirs["f1"], theirs["NoAns_exact"]) == pytest.approx(
        (val["val/exact_match"], val["val/f1"], val["val/NoAns_exact"]), abs=1e-4)
    assert "" in preds.values()


def test_evaluation_reads_nothing_back_from_the_device_until_the_epoch_ends(qa_run, cache_dir, tmp_path):
    import pytorch_lightning as pl

    from host_syncs import record_host_syncs
    from tokentune.config import validate
    from tokentune.data.datamodule import TaskDataModule
    from tokentune.model.module import TaskModule

    folder, run_dir, _ = qa_run
    cfg = validate(compose_train(run_overrides(cache_dir, tmp_path) + overrides(folder) + list(LEARNS)
                                 + ["data.eval_batch_size=8"]))

    class Mark(pl.Callback):
        def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
            log.step = batch_idx

        def on_validation_epoch_end(self, trainer, module):
            log.step = -2

    dm = TaskDataModule(cfg)
    dm.prepare_data()
    module = TaskModule(cfg, tokenizer=dm.tokenizer, base_tokenizer=dm.base_tokenizer, device="cpu")
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, callbacks=[Mark()])
    with record_host_syncs() as log:
        metrics = trainer.validate(module, datamodule=dm, ckpt_path=f"{run_dir}/checkpoints/best.ckpt",
                                   verbose=False, weights_only=True)[0]
    assert metrics["val/f1"] > 90
    batches = {c.step for c in log.calls if c.step >= 0}
    ours = [c for c in log.calls if c.step >= 0 and "tokentune" in c.site]
    assert ours == [], ours[:3]
    assert any("qa_metric.py" in c.site for c in log.at(-2))  # read once, when the epoch computes
    assert len(dm.splits["validation"]) > 8 * 2 and batches <= set(range(len(dm.splits["validation"])))


def test_bf16_mixed_precision_trains_the_reader(qa_run, tmp_path, cache_dir):
    folder, _, _ = qa_run
    results = fit(compose_train(run_overrides(cache_dir, tmp_path) + overrides(folder)
                                + [*LEARNS, "trainer.precision=bf16-mixed", "export=false"]))
    assert results["validation"]["val/f1"] > 90


def test_a_resumed_reader_ends_bit_identical_to_an_uninterrupted_one(qa_run, tmp_path, cache_dir):
    import torch

    from callbacks import whole_and_resumed

    folder, _, _ = qa_run
    (whole, whole_record), (resumed, record) = whole_and_resumed(
        cache_dir, tmp_path, overrides(folder) + [*LEARNS, "callbacks.every_n_train_steps=10", "export=false"],
        crash_at=57)  # mid-epoch: the 2nd epoch's; last.ckpt at step 50
    assert record.batches == whole["steps"] - 50
    assert record.weights.keys() == whole_record.weights.keys()
    assert all(torch.equal(v, whole_record.weights[k]) for k, v in record.weights.items())
    assert resumed["validation"] == whole["validation"] and whole["validation"]["val/f1"] > 90


def test_a_sweep_is_collected_on_f1(qa_run, tmp_path, cache_dir):
    from tokentune.sweep.collect import collect

    folder, _, _ = qa_run
    sweep = tmp_path / "sweep"
    done = run_cli("train.py", "-m", *overrides(folder), *LEARNS, "trainer.max_epochs=1", "optimizer.lr=1e-3,2e-3",
                   "export=false", "callbacks.progress_bar=none", f"paths.cache_dir={cache_dir}",
                   f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr[-2000:]
    # the task's overrides make the jobs' folder names too long to create: cut, the number first
    jobs = sorted(d.name for d in sweep.iterdir() if d.is_dir())
    assert [j[:2] for j in jobs] == ["0-", "1-"] and all(len(j.encode()) <= 209 for j in jobs)
    summary = collect(sweep, None, None)
    assert summary.table.metric == "validation/f1"
    assert [row.group["optimizer.lr"] for row in summary.table.rows] == ["0.001", "0.002"]  # as Hydra records them
    assert all({"validation/f1", "validation/exact_match"} <= set(row.metrics) for row in summary.table.rows)
    runs = sorted(sweep.glob("*/results.json"))
    assert [row.metrics["validation/f1"].mean for row in summary.table.rows] == pytest.approx(
        [json.loads(r.read_text())["validation"]["val/f1"] for r in runs])


def test_modernbert_trains_its_classifier_head_under_lora_and_exports_it(qa_run, tmp_path, cache_dir):
    """ModernBERT's question-answering head is `classifier`, not the qa_outputs that peft's
    QUESTION_ANS trains: it trains in full all the same, and the merged export computes the run's logits."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from exported import checkpoint_model

    folder, _, _ = qa_run
    results = fit(compose_train(run_overrides(cache_dir, tmp_path / "run") + overrides(folder) + [
        "model=modernbert_tiny", "finetune=lora", "data.max_length=96", "trainer.max_epochs=1",
        "trainer.limit_train_batches=8", "data.batch_size=16", "optimizer.lr=1e-2"]))
    head = results["parameters"]["groups"]["head"]
    assert head["trainable"] == 2 * 32 + 2  # the classifier's weight and bias (hidden size 32)
    saved = torch.load(results["best_checkpoint"], weights_only=True)["state_dict"]
    trained = {k: v for k, v in saved.items() if ".classifier." in k}
    assert trained and sum(v.numel() for v in trained.values()) == head["trainable"]
    module = checkpoint_model(results["best_checkpoint"], cache_dir, tmp_path / "eval")
    wrapped = module.model.get_base_model().classifier  # peft's copy that trains beside the original
    exported = AutoModelForQuestionAnswering.from_pretrained(results["model_dir"]).eval()
    assert torch.equal(exported.classifier.weight, wrapped.modules_to_save["default"].weight)
    assert not torch.allclose(exported.classifier.weight, wrapped.original_module.weight)
    paragraphs = json.loads((folder / "dev.json").read_text())["data"][0]["paragraphs"][:8]
    inputs = AutoTokenizer.from_pretrained(results["model_dir"])(
        [p["qas"][0]["question"] for p in paragraphs], [p["context"] for p in paragraphs], truncation="only_second",
        max_length=96, padding=True, return_tensors="pt")
    with torch.no_grad():
        theirs, ours = exported(**inputs), module.model(**inputs)
    torch.testing.assert_close(theirs.start_logits, ours.start_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(theirs.end_logits, ours.end_logits, rtol=1e-5, atol=1e-5)
