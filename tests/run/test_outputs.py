"""What a run writes and which weights it reports: the default run folder, results.json with
test metrics where the test split has labels, the best checkpoint across epochs, early stopping."""
import csv
import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from conftest import ROOT, run_cli, run_overrides
from tokentune.config import compose as compose_train
from tokentune.data import datamodule
from tokentune.run.fit import fit
from tokentune.run.results import RunResults

DEMO = Path(datamodule.__file__).parent / "demo"


def task_with_test_split(tmp_path: Path, test_rows: str) -> list[str]:
    """Overrides for a task of the demo data plus a test.tsv, defined the README's way: one YAML
    file in a folder on Hydra's search path."""
    data = tmp_path / "data"
    shutil.copytree(DEMO, data)
    (data / "test.tsv").write_text(test_rows)
    conf = tmp_path / "my_conf"
    (conf / "task").mkdir(parents=True)
    (conf / "task" / "with_test.yaml").write_text(
        f"name: with_test\ndata_dir: {data}\n"
        "splits: {train: {path: train.tsv}, validation: {path: dev.tsv}, test: {path: test.tsv}}\n"
        'labels: ["0", "1"]\nmetrics: [accuracy, f1]\nmonitor: accuracy\n')
    return [f"hydra.searchpath=[file://{conf}]", "task=with_test"]


def validations(run_dir: Path) -> tuple[list[dict], dict]:
    """From the run's logs/metrics.csv: one {epoch, val/...} row per validation while training,
    and the last row, the final scoring of the checkpoint the run reports."""
    with open(run_dir / "logs" / "metrics.csv") as f:
        rows = [{k: float(v) for k, v in row.items() if v and (k == "epoch" or k.startswith("val/"))}
                for row in csv.DictReader(f) if row.get("val/accuracy")]
    return rows[:-1], rows[-1]


def test_a_run_writes_the_default_layout(tmp_path, cache_dir):
    # as a user runs it: from a working directory, no output folder given
    out = run_cli(str(ROOT / "train.py"), "model=bert_tiny", "finetune=lora", "trainer.max_epochs=1",
                  "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
                  f"paths.cache_dir={cache_dir}", "callbacks.progress_bar=none", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = list((tmp_path / "outputs").glob("*/*/*"))
    assert len(runs) == 1
    run = runs[0]
    # outputs/<task>/<model>-<method>/<time>/
    assert run.relative_to(tmp_path).parts[:3] == ("outputs", "demo", "bert_tiny-lora")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", run.name)
    assert f"run: {run}\n" in out.stdout
    assert sorted(p.name for p in run.iterdir()) == [
        ".hydra", "checkpoints", "cli.log", "config.yaml", "logs", "model", "results.json",
        "vocab_report.json", "vocab_report.md"]
    assert sorted(p.name for p in (run / ".hydra").iterdir()) == [
        "config.yaml", "hydra.yaml", "overrides.yaml"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert sorted(p.name for p in (run / "logs").iterdir()) == ["hparams.yaml", "metrics.csv"]
    assert sorted(p.name for p in (run / "model").iterdir()) == [
        "README.md", "adapter", "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
        "tokentune.json"]

    results = json.loads((run / "results.json").read_text())
    # every key is RunResults's, and read back and written again the file is the same text
    assert set(results) == {f.name for f in dataclasses.fields(RunResults)} - {"non_finite"}
    RunResults.load(run / "results.json").write(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == (run / "results.json").read_text()
    assert results["run_dir"] == str(run)
    assert set(results["validation"]) == {"val/accuracy", "val/f1", "val/loss"}
    assert results["test"] == {}  # the demo task has no test split
    assert results["best_checkpoint"] == str(run / "checkpoints" / "best.ckpt")
    assert results["checkpoint_mb"] == (run / "checkpoints" / "best.ckpt").stat().st_size / 2**20
    groups = results["parameters"]["groups"]
    assert sum(g["trainable"] for g in groups.values()) == results["parameters"]["trainable"] > 0
    assert sum(g["total"] for g in groups.values()) == results["parameters"]["total"]
    assert results["wall_time_s"] > 0
    config = (run / "config.yaml").read_text()
    assert "name: bert_tiny" in config and "${" not in config  # resolved


# 96 training rows (6 batches an epoch) at a high rate: the tiny BERT fits them within a few
# epochs (train loss 0.04 by step 49), its dev scores leave chance (64 % dev, loss 0.644 at epoch 4)
# and then its dev loss climbs as it overfits; so the best epoch by dev loss comes before the last
OVERFITS = ("model=bert_tiny", "data.max_train_examples=96", "optimizer.lr=5e-3", "task.monitor=loss",
            "trainer.max_epochs=10", "trainer.log_every_n_steps=5")
STEPS_PER_EPOCH = 96 // 16


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory, cache_dir):
    """A 10-epoch run with a labelled test split that is a copy of the dev split."""
    tmp_path = tmp_path_factory.mktemp("overfit")
    task = task_with_test_split(tmp_path, (DEMO / "dev.tsv").read_text())
    run = tmp_path / "run"
    results = fit(compose_train(run_overrides(cache_dir, run) + [*task, *OVERFITS]))
    logged, final = validations(run)
    assert [row["epoch"] for row in logged] == list(range(10))
    losses = [row["val/loss"] for row in logged]
    best = losses.index(min(losses))  # ModelCheckpoint keeps the first of equal scores
    assert best < 9, f"the last epoch has the lowest dev loss: the run does not overfit {losses}"
    # the epochs compared are a trained model's: the training batches fitted (ln 2 = 0.693 at
    # chance), the best epoch off chance on the balanced dev split, and each epoch's scores its own,
    # so that the metrics reported below name one epoch's weights
    with open(run / "logs" / "metrics.csv") as f:
        train = [float(row["train/loss"]) for row in csv.DictReader(f) if row["train/loss"]]
    assert len(train) == 12 and max(train[-3:]) < 0.2, train  # steps 49, 54, 59
    assert logged[best]["val/accuracy"] > 0.6 and losses[best] < 0.67, logged[best]
    assert len(set(losses)) == 10, losses
    return run, results, logged, final, best


def scores(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "epoch"}


def test_the_best_epoch_by_the_task_metric_is_kept_and_reported(overfit_run):
    run, results, logged, final, best = overfit_run
    ckpts = run / "checkpoints"
    assert torch.load(ckpts / "best.ckpt", weights_only=True)["epoch"] == best
    assert results["best_checkpoint"] == str(ckpts / "best.ckpt")
    assert results["validation"] == scores(logged[best])  # the best epoch's weights, scored again
    assert scores(final) == scores(logged[best])  # that scoring's row in logs/metrics.csv
    assert json.loads((run / "results.json").read_text())["validation"] == scores(logged[best])


def test_a_labelled_test_split_is_scored_with_the_best_weights(overfit_run):
    # test.tsv is dev.tsv: the same rows, the same (best) weights, so the same scores
    run, results, logged, _, best = overfit_run
    expected = {k.replace("val/", "test/"): v for k, v in scores(logged[best]).items()}
    assert results["test"] == expected
    assert json.loads((run / "results.json").read_text())["test"] == expected


def test_last_ckpt_holds_the_final_epoch(overfit_run):
    run, *_ = overfit_run
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 9


def test_a_test_split_without_labels_is_not_scored(compose, tmp_path):
    # GLUE's test files: an index and the text, no label column
    rows = "index\tsentence\n0\tA fine film.\n1\tNot good at all.\n"
    task = task_with_test_split(tmp_path, rows)
    results = fit(compose("model=bert_tiny", *task, "trainer.max_epochs=1",
                          "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"))
    assert results["test"] == {}
    assert json.loads((tmp_path / "results.json").read_text())["test"] == {}


def first_stop(losses: list[float], patience: int) -> int:
    """The epoch after which EarlyStopping (mode min, min_delta 0) ends a run with these dev
    losses: the first with `patience` validations in a row not below the best before them."""
    best, wait = float("inf"), 0
    for epoch, loss in enumerate(losses):
        best, wait = (loss, 0) if loss < best else (best, wait + 1)
        if wait >= patience:
            return epoch
    return len(losses) - 1


@pytest.mark.parametrize("patience", [1, 2])
def test_early_stopping_ends_the_run_after_patience_validations_without_a_gain(compose, tmp_path,
                                                                               patience):
    results = fit(compose(*OVERFITS, f"callbacks.early_stopping_patience={patience}"))
    logged, _ = validations(tmp_path)
    losses = [row["val/loss"] for row in logged]
    stop = first_stop(losses, patience)
    assert stop < 9, f"no early stop within 10 epochs: {losses}"  # the run really ended early
    assert [row["epoch"] for row in logged] == list(range(stop + 1))  # and at that epoch
    assert results["steps"] == (stop + 1) * STEPS_PER_EPOCH
