"""The sweep collector: a real tiny multirun, then its table, CSV, plot and the faults."""
from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, write_results
from tokentune.sweep.collect import collect, main

SWEEP = ("model=bert_tiny", "finetune=full,lora", "seed=1,2", "trainer.max_steps=2",
         "trainer.limit_val_batches=1", "test=false", "callbacks=none", "logger=none")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, cache_dir) -> Path:
    out = tmp_path_factory.mktemp("multirun") / "sweep"
    proc = run_cli("train.py", "-m", *SWEEP, f"hydra.sweep.dir={out}",
                   f"paths.cache_dir={cache_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def job_results(sweep: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]


def mean_std(a: float, b: float) -> tuple[float, float]:
    return (a + b) / 2, abs(a - b) / math.sqrt(2)  # sample std (n - 1) of two values


@pytest.mark.slow
def test_table_is_mean_and_std_over_seeds_of_each_runs_results(sweep, tmp_path):
    runs = job_results(sweep)
    assert sorted((r["finetune"], r["seed"]) for r in runs) == [
        ("full", 1), ("full", 2), ("lora", 1), ("lora", 2)]
    summary = collect(sweep, out=tmp_path)
    assert summary.skipped == []

    with open(tmp_path / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["finetune"] for r in rows] == ["full", "lora"]  # model=bert_tiny is not swept
    assert list(rows[0]) == ["finetune", "n", "validation/accuracy mean", "validation/accuracy std",
                             "validation/f1 mean", "validation/f1 std", "validation/loss mean",
                             "validation/loss std", "trainable_params", "wall_time_s"]
    markdown = (tmp_path / "summary.md").read_text()
    for row in rows:
        a, b = [r for r in runs if r["finetune"] == row["finetune"]]
        assert int(row["n"]) == 2
        for name in ("accuracy", "f1", "loss"):
            mean, std = mean_std(a["validation"][f"val/{name}"], b["validation"][f"val/{name}"])
            assert float(row[f"validation/{name} mean"]) == pytest.approx(mean, abs=1e-12)
            assert float(row[f"validation/{name} std"]) == pytest.approx(std, abs=1e-12)
        assert int(row["trainable_params"]) == a["parameters"]["trainable"]
        assert float(row["wall_time_s"]) == pytest.approx((a["wall_time_s"] + b["wall_time_s"]) / 2)
        acc = mean_std(a["validation"]["val/accuracy"], b["validation"]["val/accuracy"])
        trainable = f"{a['parameters']['trainable']:,}"
        assert f"| {row['finetune']} | 2 | {acc[0]:.4f} ± {acc[1]:.4f} |" in markdown
        assert f"| {trainable} |" in markdown
    assert int(rows[1]["trainable_params"]) < int(rows[0]["trainable_params"]) / 100  # LoRA

    png = (tmp_path / "summary.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 5000


@pytest.mark.slow
def test_half_written_runs_are_skipped_and_named(sweep, tmp_path, capsys):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    # killed mid-run: Hydra wrote .hydra/, fit wrote config.yaml, no results.json yet
    killed = copy / "4-finetune=adapter,seed=1"
    (killed / ".hydra").mkdir(parents=True)
    (killed / ".hydra" / "overrides.yaml").write_text("- finetune=adapter\n- seed=1\n")
    (killed / "config.yaml").write_text("seed: 1\n")
    truncated = copy / "5-finetune=lora,seed=3"
    shutil.copytree(next(copy.glob("2-*")), truncated)
    whole = (truncated / "results.json").read_text()
    (truncated / "results.json").write_text(whole[: len(whole) // 2])

    main([str(copy), "--out", str(tmp_path)])
    err = capsys.readouterr().err.splitlines()
    assert err == ["skipped 2 of 6 runs:",
                   "  4-finetune=adapter,seed=1: no results.json (unfinished or killed)",
                   "  5-finetune=lora,seed=3: results.json is not valid JSON (truncated?)"]
    with open(tmp_path / "summary.csv", newline="") as f:
        rows = [(r["finetune"], r["n"]) for r in csv.DictReader(f)]
    assert rows == [("full", "2"), ("lora", "2")]


@pytest.mark.slow
def test_cli_prints_the_table_and_plots_another_metric(sweep, tmp_path):
    proc = run_cli("-m", "tokentune.sweep.collect", str(sweep), "--metric", "val/loss",
                   "--out", str(tmp_path), timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == ("| finetune | n | validation/loss | validation/accuracy | validation/f1 "
                        "| trainable params | wall time (s) |")
    assert [line.split(" | ")[0] for line in lines[2:4]] == ["| full", "| lora"]
    written = ", ".join(str(tmp_path / f"summary.{ext}") for ext in ("md", "csv", "png"))
    assert lines[-1] == f"wrote {written}"
    assert (tmp_path / "summary.png").read_bytes().startswith(PNG_MAGIC)


# -- synthetic sweeps: the collector's rules without training ----------------------------

def fake_run(d: Path, overrides: list[str], accuracy: float, *, config: dict | None = None,
             choices: dict | None = None) -> None:
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if choices:
        hydra = {"hydra": {"runtime": {"choices": choices}}}
        (d / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    (d / "config.yaml").write_text(yaml.safe_dump(config or {"task": {"monitor": "accuracy"}}))
    write_results(d, validation={"val/accuracy": accuracy, "val/loss": 1 - accuracy},
                  parameters={"trainable": 100, "total": 1000}, wall_time_s=10.0)


def test_groups_by_every_swept_key_and_fills_defaults_from_the_run(tmp_path):
    sweep = tmp_path / "sweep"
    config = {"task": {"monitor": "accuracy"}, "optimizer": {"lr": 0.001}}
    fake_run(sweep / "0", ["finetune=lora", "optimizer.lr=0.001", "model=bert_tiny", "seed=1"], 0.5)
    fake_run(sweep / "1", ["finetune=lora", "optimizer.lr=0.001", "model=bert_tiny", "seed=2"], 0.7)
    fake_run(sweep / "2", ["finetune=lora", "optimizer.lr=0.01", "model=bert_tiny", "seed=1"], 0.9)
    # launched without these overrides: lr from its config.yaml, method from Hydra's choices
    fake_run(sweep / "10", ["model=bert_tiny", "seed=1"], 0.6, config=config,
             choices={"finetune": "full"})
    table = collect(sweep, out=tmp_path).table
    assert table.keys == ["finetune", "optimizer.lr"]  # model is the same everywhere; seed averaged
    accuracy = [r.metrics["validation/accuracy"] for r in table.rows]
    assert [(r.group, len(r.runs)) for r in table.rows] == [
        ({"finetune": "lora", "optimizer.lr": "0.001"}, 2),
        ({"finetune": "lora", "optimizer.lr": "0.01"}, 1),
        ({"finetune": "full", "optimizer.lr": "0.001"}, 1)]
    assert [(a.mean, a.std) for a in accuracy] == [
        (pytest.approx(0.6), pytest.approx(0.1 * math.sqrt(2))), (0.9, None), (0.6, None)]
    markdown = (tmp_path / "summary.md").read_text()
    assert "| lora | 0.01 | 1 | 0.9000 | 0.1000 | 100 | 10.0 |" in markdown


def test_no_finished_runs_is_one_error_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exit_:
        main([str(empty)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        f"error: no finished runs in {empty}: no run folders (.hydra/ or results.json)\n")

    killed = tmp_path / "killed"
    (killed / "0-seed=1" / ".hydra").mkdir(parents=True)
    with pytest.raises(SystemExit):
        main([str(killed)])
    assert capsys.readouterr().err.splitlines() == [
        "skipped 1 of 1 runs:", "  0-seed=1: no results.json (unfinished or killed)",
        f"error: no finished runs in {killed}: 1 unfinished"]


def test_a_missing_folder_is_an_error_without_traceback(tmp_path):
    proc = run_cli("-m", "tokentune.sweep.collect", str(tmp_path / "nope"), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == f"error: {tmp_path / 'nope'} does not exist\n"


def test_metric_errors_name_what_is_there(tmp_path, capsys):
    fake_run(tmp_path / "s" / "0", ["seed=1"], 0.5)
    for metric, message in [
        ("accuracy", "error: --metric: 'accuracy' is not split/name, e.g. validation/accuracy\n"),
        ("validation/mcc", "error: --metric: no run reports validation/mcc; "
                           "they report validation/accuracy, validation/loss\n")]:
        with pytest.raises(SystemExit):
            main([str(tmp_path / "s"), "--metric", metric])
        assert capsys.readouterr().err == message


def test_runs_of_different_tasks_need_a_metric(tmp_path, capsys):
    fake_run(tmp_path / "s" / "0", ["task=sst2"], 0.5)
    fake_run(tmp_path / "s" / "1", ["task=cola"], 0.5, config={"task": {"monitor": "mcc"}})
    with pytest.raises(SystemExit):
        main([str(tmp_path / "s")])
    assert capsys.readouterr().err == (
        "error: the runs monitor different metrics (accuracy, mcc); "
        "choose one with --metric, e.g. --metric validation/accuracy\n")
    summary = collect(tmp_path / "s", metric="validation/accuracy", out=tmp_path)
    assert [r.group["task"] for r in summary.table.rows] == ["sst2", "cola"]
