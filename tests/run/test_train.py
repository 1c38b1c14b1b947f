"""End to end: tiny models train a few steps on CPU through the same path as `train.py`."""
import csv
import json
import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from callbacks import Crash, CrashAt, Record
from conftest import needs_real_data, run_cli, run_overrides
from tokentune.config import compose as compose_train
from tokentune.run.fit import fit

FAST = ("trainer.max_epochs=1", "data.batch_size=16", "trainer.log_every_n_steps=5")


@pytest.mark.parametrize("model", ["bert_tiny", "gpt2_tiny"])
def test_tiny_models_train_on_demo(compose, tmp_path, model):
    results = fit(compose(f"model={model}", *FAST))
    assert results["steps"] == 26  # 405 rows / 16 per batch
    assert set(results["validation"]) == {"val/accuracy", "val/f1", "val/loss"}
    assert 0.0 <= results["validation"]["val/accuracy"] <= 1.0
    assert results["parameters"]["trainable"] == results["parameters"]["total"] > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["validation"] == results["validation"]
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert "train/loss" in (tmp_path / "logs" / "metrics.csv").read_text()
    assert (tmp_path / "config.yaml").read_text().count(f"name: {model}") == 1


def metrics_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "logs" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


# 3 epochs of 51 batches that take the tiny BERT off chance (74 % dev accuracy, loss 0.55); dropout
# (0.1) draws from the global RNG at every step. last.ckpt every 10 steps, the loss logged every 5:
# rows of batches trained after a checkpoint and before the interruption must not stay twice
RESUMABLE = ("model=bert_tiny", "trainer.max_epochs=3", "optimizer.lr=2e-3", "data.batch_size=8",
             "callbacks.every_n_train_steps=10", "trainer.log_every_n_steps=5")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cache_dir):
    run_dir = tmp_path_factory.mktemp("whole")
    record = Record()
    results = fit(compose_train(run_overrides(cache_dir, run_dir) + list(RESUMABLE)),
                  extra_callbacks=[record])
    return results, record, metrics_rows(run_dir)


@pytest.mark.parametrize("crash,saved_at", [
    (128, 120),  # mid-epoch, 18 of the 3rd epoch's 51 batches done: the every-10-steps last.ckpt
    # the end of the 2nd epoch: last.ckpt written when its validation ended (with best.ckpt: it
    # beat the 1st epoch's). Without the loaders' own generators this one breaks: the 3rd
    # epoch's loader would draw its seed from the RNGs between the checkpoint and the next batch
    (103, 102),
], ids=["mid_epoch", "epoch_end"])
def test_resumed_fit_is_bit_identical_to_an_uninterrupted_one(uninterrupted, compose, tmp_path,
                                                               crash, saved_at):
    whole, whole_record, whole_rows = uninterrupted
    assert whole_record.batches == whole["steps"] == 153
    # a model at chance would match whatever was restored: this one has learnt (chance: 0.5, ln 2)
    last_val = [row for row in whole_rows if row["val/accuracy"]][-2]  # the last epoch's, not best's
    assert float(last_val["val/accuracy"]) > 0.7 and float(last_val["val/loss"]) < 0.6

    with pytest.raises(Crash):
        fit(compose(*RESUMABLE, run_dir=tmp_path), extra_callbacks=[CrashAt(crash)])
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == saved_at
    cut_rows = metrics_rows(tmp_path)
    if crash == 128:  # rows of batches trained after the checkpoint: a resumed fit logs them again
        assert any(int(row["step"]) >= saved_at for row in cut_rows)

    record = Record()
    resumed = fit(compose(*RESUMABLE, f"ckpt_path={last}", run_dir=tmp_path / "elsewhere"),
                  extra_callbacks=[record])
    assert resumed["run_dir"] == str(tmp_path)  # a resumed run continues its directory
    # it trained the rest of the run, no batch again and none left out (fails if ckpt_path is ignored)
    assert record.batches == 153 - saved_at
    assert resumed["steps"] == 153
    # the same final weights, bit for bit (dropout drew what it would have: the RNGs were restored)
    assert record.weights.keys() == whole_record.weights.keys()
    different = [k for k, v in record.weights.items() if not torch.equal(v, whole_record.weights[k])]
    assert not different, f"{len(different)} of {len(record.weights)} tensors differ: {different[:3]}"
    # the same rows in logs/metrics.csv, exactly: every one logged before the checkpoint kept, the
    # later ones once, and each validation's metrics (the last epoch's, the best checkpoint's) equal
    rows = metrics_rows(tmp_path)
    kept = [row for row in cut_rows if int(row["step"]) < saved_at]
    assert kept and rows[:len(kept)] == kept
    assert [row for row in rows if row["val/accuracy"]][-2] == last_val
    assert rows == whole_rows
    assert resumed["validation"] == whole["validation"]


def test_same_seed_same_metrics(uninterrupted, compose, tmp_path):
    """The same seed trains the same run, step for step and bit for bit; another seed another."""
    whole, whole_record, whole_rows = uninterrupted
    # compared once the model has learnt (chance: 0.5, ln 2): a model at chance scores the same
    # whatever batches, dropout masks or initial weights it saw
    last_val = [row for row in whole_rows if row["val/accuracy"]][-2]
    assert float(last_val["val/accuracy"]) > 0.7 and float(last_val["val/loss"]) < 0.6
    record = Record()
    again = fit(compose(*RESUMABLE, run_dir=tmp_path / "again"), extra_callbacks=[record])
    # every step's loss over the 3 epochs (each reshuffled, dropout on), then the final weights
    assert len(record.losses) == len(whole_record.losses) == 153
    steps = [i for i, (a, b) in enumerate(zip(record.losses, whole_record.losses)) if a != b]
    assert not steps, f"{len(steps)} of 153 steps' losses differ, the first at step {steps[0]}"
    different = [k for k, v in record.weights.items() if not torch.equal(v, whole_record.weights[k])]
    assert record.weights.keys() == whole_record.weights.keys() and not different, different[:3]
    assert metrics_rows(tmp_path / "again") == whole_rows and again["validation"] == whole["validation"]
    # another seed: other initial weights, batches and dropout masks, so another loss at the first
    # step already (computed before any update: the schedule, which max_steps changes, plays no part)
    other = Record()
    fit(compose(*RESUMABLE, "seed=7", "trainer.max_steps=1", "trainer.limit_val_batches=1",
                run_dir=tmp_path / "seed7"), extra_callbacks=[other])
    assert other.losses[0] != whole_record.losses[0]


# A random-init tiny BERT stays at chance on the demo for its first few epochs; these 208 steps reach
# 74 % dev accuracy, well past the 50 % that predicting one class scores on the balanced dev split
LEARNS = ("trainer.max_epochs=8", "optimizer.lr=2e-3", "data.batch_size=16")


def test_evaluate_and_predict_from_a_checkpoint(compose, tmp_path, cache_dir):
    cfg = compose("model=bert_tiny", *LEARNS, run_dir=tmp_path / "run")
    results = fit(cfg)
    accuracy = results["validation"]["val/accuracy"]
    assert accuracy > 0.65
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    common = [f"ckpt_path={ckpt}", f"paths.cache_dir={cache_dir}", "accelerator=cpu"]
    out = run_cli("-m", "tokentune.cli_evaluate", *common, f"hydra.run.dir={tmp_path / 'eval'}")
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    for k, v in results["validation"].items():
        assert math.isclose(metrics[k], v, rel_tol=1e-6), k
    out = run_cli("-m", "tokentune.cli_predict", *common, "split=validation",
                  f"hydra.run.dir={tmp_path / 'pred'}")
    assert out.returncode == 0, out.stderr
    lines = (tmp_path / "pred" / "DEMO.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 1 + 90
    dev = Path(cfg.task.data_dir) / cfg.task.splits.validation.path
    labels = [row.split("\t")[1] for row in dev.read_text().splitlines()[1:]]
    rows = [line.split("\t") for line in lines[1:]]
    assert [index for index, _ in rows] == [str(i) for i in range(90)]  # the file's order
    # the predictions are the checkpoint's own: right exactly where its validation score says
    assert sum(p == label for (_, p), label in zip(rows, labels)) == round(accuracy * 90)


@needs_real_data
@pytest.mark.real_data
@pytest.mark.parametrize("task,metric", [("rte", "val/accuracy"), ("cola", "val/mcc")])
def test_glue_tasks_train(compose, task, metric):
    results = fit(compose("model=bert_tiny", f"task={task}", "trainer.max_steps=3",
                          "data.max_train_examples=96", "trainer.limit_val_batches=2"))
    assert results["steps"] == 3 and metric in results["validation"]


@needs_real_data
@pytest.mark.real_data
def test_gpt2_causal_lm_on_shakespeare_reports_perplexity(compose, tmp_path):
    results = fit(compose("model=gpt2_tiny", "task=shakespeare", "trainer.max_steps=20",
                          "optimizer.lr=1e-2", "data.batch_size=8", "trainer.limit_val_batches=2",
                          "task.block_size=64", "trainer.log_every_n_steps=1"))
    ppl = results["validation"]["val/perplexity"]
    # the loss logged at step 0 is the untrained model's: about uniform over the 257 byte symbols
    with open(tmp_path / "logs" / "metrics.csv") as f:
        logged = sorted((int(row["step"]), float(row["train/loss"]))
                        for row in csv.DictReader(f) if row["train/loss"])
    assert logged[0][0] == 0
    untrained = math.exp(logged[0][1])
    assert 1.0 < ppl < untrained / 4  # trained: at least the byte frequencies are learnt


class Moves(pl.Callback):
    """The module's parameters as training starts and as it ends, and which ones train."""

    def on_train_start(self, trainer, pl_module):
        self.trainable = {n for n, p in pl_module.named_parameters() if p.requires_grad}
        self.before = {n: p.detach().clone() for n, p in pl_module.named_parameters()}

    def on_train_end(self, trainer, pl_module):
        self.after = {n: p.detach().clone() for n, p in pl_module.named_parameters()}


@pytest.mark.parametrize("method", ["adapter", "lora", "prefix"])
@pytest.mark.parametrize("model", ["bert_tiny", "gpt2_tiny"])
def test_peft_methods_train_end_to_end(compose, tmp_path, model, method):
    moves = Moves()
    results = fit(compose(f"model={model}", f"finetune={method}", *FAST), extra_callbacks=[moves])
    p = results["parameters"]
    assert 0 < p["trainable"] < p["total"] / 5
    # the run's optimizer stepped every trainable tensor (the method's and the head) and no other
    assert sum(moves.before[n].numel() for n in moves.trainable) == p["trainable"]
    unmoved = sorted(n for n in moves.trainable if torch.equal(moves.after[n], moves.before[n]))
    assert not unmoved, f"{len(unmoved)} of {len(moves.trainable)} trainable never moved: {unmoved[:3]}"
    moved = sorted(n for n in moves.before.keys() - moves.trainable
                   if not torch.equal(moves.after[n], moves.before[n]))
    assert not moved, f"frozen tensors moved: {moved[:3]}"
    ckpt = tmp_path / "checkpoints" / "best.ckpt"
    full_mb = p["total"] * 4 / 2**20
    assert results["checkpoint_mb"] == ckpt.stat().st_size / 2**20 < full_mb / 3
    if method == "lora":
        assert (tmp_path / "model" / "model.safetensors").is_file()


# LoRA on the random-init tiny BERT's frozen base stays at chance (50 % dev after 4 epochs at
# 1e-2); with a vocabulary of the demo's own, whose new embedding rows train beside LoRA and the
# head, 3 epochs at 1e-2 reach 79 % dev (loss 0.51)
PEFT_LEARNS = ("model=bert_tiny", "finetune=lora", "tokenizer=bpe8k", "optimizer.lr=1e-2",
               "trainer.max_epochs=3", "data.batch_size=16")


def test_peft_checkpoint_reloads_to_identical_metrics(compose, tmp_path, cache_dir):
    results = fit(compose(*PEFT_LEARNS, run_dir=tmp_path / "run"))
    # a model at chance scores the same with whatever weights are (not) reloaded
    assert results["validation"]["val/accuracy"] > 0.7 and results["validation"]["val/loss"] < 0.65
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    out = run_cli("-m", "tokentune.cli_evaluate", f"ckpt_path={ckpt}", f"paths.cache_dir={cache_dir}",
                  "accelerator=cpu", f"hydra.run.dir={tmp_path / 'eval'}")
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert metrics == pytest.approx(results["validation"], rel=1e-6)


@pytest.mark.parametrize("model,tokenizer", [("bert_tiny", "bpe8k"), ("bert_tiny", "extend"),
                                             ("gpt2_tiny", "byte_bpe32k"), ("gpt2_tiny", "extend")])
def test_new_vocabulary_trains_with_induced_embeddings(compose, tmp_path, model, tokenizer):
    moves = Moves()
    results = fit(compose(f"model={model}", f"tokenizer={tokenizer}", "finetune=lora", *FAST),
                  extra_callbacks=[moves])
    report = json.loads((tmp_path / "vocab_report.json").read_text())
    assert (tmp_path / "vocab_report.md").is_file()
    assert results["vocabulary"]["vocab_size"] == report["vocab_size"]
    stats = results["induction"]
    assert stats["new_size"] == report["vocab_size"]
    assert sum(stats[k] for k in ("kept", "special", "copied", "fvt", "random")) == stats["new_size"]
    groups = results["parameters"]["groups"]
    assert groups["embeddings"]["trainable"] > 0  # new rows train even under LoRA
    (embeddings,) = [n for n in moves.trainable if n.endswith(("word_embeddings.weight", "wte.weight"))]
    unmoved = sorted(n for n in moves.trainable if torch.equal(moves.after[n], moves.before[n]))
    assert embeddings not in unmoved and not unmoved, f"trainable tensors never moved: {unmoved[:3]}"
    assert not [n for n in moves.before.keys() - moves.trainable
                if not torch.equal(moves.after[n], moves.before[n])]


def test_wandb_logger_runs_offline_without_a_key(compose, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    fit(compose("model=bert_tiny", "logger=wandb", "trainer.max_steps=2", "trainer.limit_val_batches=1"))
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))
