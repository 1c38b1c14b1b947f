"""tokentune-glue-submission: a set of runs (one per task) into the GLUE server's zip, refusing
an incomplete set, mixed models and predictions that do not cover a test split."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import run_cli, write_results
from tokentune.sweep.glue_submission import FILES

SERVER_FILES = sorted(FILES)
TEST_SPLITS = {"cola": ["test"], "sst2": ["test"], "mrpc": ["test"], "stsb": ["test"], "qqp": ["test"],
               "mnli": ["test_matched", "test_mismatched"], "qnli": ["test"], "rte": ["test"], "wnli": ["test"],
               "ax": ["test_matched", "test_mismatched", "test_ax"]}
PREDICTION = {"stsb": "5.700000", "mnli": "neutral", "ax": "contradiction", "qnli": "entailment",
              "rte": "not_entailment"}


def glue_dir(root: Path) -> Path:
    """Each task's test split: 3 rows (test_ax: 2) in its own header layout; train/dev as one row."""
    from data.test_glue_tasks import FILES as LAYOUTS

    layouts = {**LAYOUTS, "SST-2": {"test.tsv": "index\tsentence\n"}, "CoLA": {"test.tsv": "index\tsentence\n"},
               "RTE": {"test.tsv": "index\tsentence1\tsentence2\n"}}
    for task, files in layouts.items():
        folder = root / task
        folder.mkdir(parents=True)
        for name, text in files.items():
            if name.startswith("test") or name == "diagnostic.tsv":
                header = text.splitlines()[0].lstrip("\ufeff")
                width = len(header.split("\t"))
                n = 2 if name == "diagnostic.tsv" else 3
                text = header + "\n" + "".join("\t".join([str(i)] + [f"text {i}"] * (width - 1)) + "\n"
                                              for i in range(n))
            (folder / name).write_text(text, encoding="utf-8")
    return root


def fake_run(runs: Path, compose, glue: Path, task: str, *, model="bert_tiny", score=0.5, rows=None) -> Path:
    run = runs / f"{task}-{model}-{score}-{rows}"
    run.mkdir(parents=True)
    cfg = compose(f"task={task}", f"paths.glue_dir={glue}", f"model={model}")
    (run / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    predictions = {}
    for split in TEST_SPLITS[task]:
        n = rows if rows is not None else (2 if split == "test_ax" else 3)
        path = run / f"{task}-{split}.tsv"
        path.write_text("index\tprediction\n" + "".join(f"{i}\t{PREDICTION.get(task, '1')}\n" for i in range(n)))
        predictions[split] = str(path)
    monitor = cfg.task.monitor.rpartition("/")
    key = ("val" + monitor[0][len("validation"):] if monitor[0] else "val") + "/" + monitor[2]
    write_results(run, task=task, model=model, validation={key: score}, test_predictions=predictions)
    return run


@pytest.fixture
def runs(tmp_path, compose):
    glue = glue_dir(tmp_path / "glue")
    folder = tmp_path / "runs"
    for task in TEST_SPLITS:
        fake_run(folder, compose, glue, task)
    return folder, glue


def submit(folder: Path, out: Path):
    return run_cli("-m", "tokentune.sweep.glue_submission", str(folder), "--out", str(out))


def test_the_zip_holds_every_server_file_with_index_and_label_strings(runs, tmp_path, compose):
    folder, glue = runs
    fake_run(folder, compose, glue, "rte", score=0.9)  # a second RTE run, with a better score: chosen
    (folder / "rte-bert_tiny-0.9-None" / "rte-test.tsv").write_text("index\tprediction\n0\tentailment\n1\tentailment\n2\tentailment\n")
    done = submit(folder, tmp_path / "glue.zip")
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "glue.zip") as z:
        assert sorted(z.namelist()) == SERVER_FILES
        files = {name: z.read(name).decode().splitlines() for name in z.namelist()}
    assert files["MNLI-mm.tsv"] == ["index\tprediction", "0\tneutral", "1\tneutral", "2\tneutral"]
    assert files["AX.tsv"] == ["index\tprediction", "0\tcontradiction", "1\tcontradiction"]
    assert files["STS-B.tsv"][1:] == ["0\t5.000000", "1\t5.000000", "2\t5.000000"]  # 5.7 clipped to the scale
    assert files["RTE.tsv"][1] == "0\tentailment"  # the best of the two RTE runs
    assert "rte: " in done.stderr and "best val/accuracy of 2 runs" in done.stderr


def test_ax_alone_gives_mnli_m_and_mm(runs, tmp_path):
    folder, _ = runs
    for d in folder.glob("mnli-*"):
        (d / "results.json").unlink()
    done = submit(folder, tmp_path / "glue.zip")
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "glue.zip") as z:
        assert z.read("MNLI-m.tsv").decode().splitlines()[1] == "0\tcontradiction"  # the ax run's


def test_a_missing_task_is_refused_in_one_line(runs, tmp_path):
    folder, _ = runs
    (next(folder.glob("wnli-*")) / "results.json").unlink()
    done = submit(folder, tmp_path / "glue.zip")
    assert done.returncode == 2 and not (tmp_path / "glue.zip").exists()
    assert done.stderr.strip().splitlines() == [
        f"error: {folder}: no run with test predictions for WNLI.tsv (the submission needs every GLUE task; "
        "have ax, cola, mnli, mrpc, qnli, qqp, rte, sst2, stsb)"]


def test_mixed_models_are_refused(runs, tmp_path, compose):
    folder, glue = runs
    for d in folder.glob("cola-*"):
        (d / "results.json").unlink()
    fake_run(folder, compose, glue, "cola", model="gpt2_tiny")
    done = submit(folder, tmp_path / "glue.zip")
    assert done.returncode == 2
    assert "the runs mix models (bert_tiny, gpt2_tiny)" in done.stderr


def test_predictions_that_miss_rows_of_the_test_split_are_refused(runs, tmp_path, compose):
    folder, glue = runs
    for d in folder.glob("qnli-*"):
        (d / "results.json").unlink()
    fake_run(folder, compose, glue, "qnli", rows=2)
    done = submit(folder, tmp_path / "glue.zip")
    assert done.returncode == 2
    assert "2 predictions for QNLI.tsv, but the test split has 3 rows" in done.stderr
