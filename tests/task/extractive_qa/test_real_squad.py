"""Real SQuAD text through pretrained MiniLM: the v1.1 train excerpt's first questions trained on
(about a minute of CPU), a slice of the dev excerpt scored, its predictions JSON scored the same
by the official script's logic. Ten steps leave chance, not much more (measured: F1 8.3 with
all dev questions scored); experiments/ is where the excerpts are trained in full."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_overrides
from task.extractive_qa import official
from task.extractive_qa.conftest import SQUAD, needs_squad
from tokentune.config import compose as compose_train
from tokentune.run.fit import fit


def first_questions(src: Path, dst: Path, n: int) -> list:
    data = json.loads(src.read_text())
    paragraphs, kept = [], 0
    for p in data["data"][0]["paragraphs"]:
        if kept >= n:
            break
        paragraphs.append(p)
        kept += len(p["qas"])
    data["data"] = [{"title": data["data"][0]["title"], "paragraphs": paragraphs}]
    dst.write_text(json.dumps(data))
    return data["data"]


@needs_squad
def test_minilm_on_the_excerpts_leaves_chance_and_the_official_logic_agrees(tmp_path, cache_dir):
    folder = tmp_path / "squad"
    folder.mkdir()
    first_questions(SQUAD / "train-v1.1.json", folder / "train-v1.1.json", 100)
    dev = first_questions(SQUAD / "dev-v1.1.json", folder / "dev-v1.1.json", 40)
    results = fit(compose_train(run_overrides(cache_dir, tmp_path / "run") + [
        "model=minilm", "task=squad", f"task.data_dir={folder}", "data.max_length=192", "task.doc_stride=64",
        "trainer.max_epochs=1", "data.max_train_examples=160", "optimizer.lr=1e-4", "data.batch_size=16",
        "export=false"]))
    val = results["validation"]
    assert results["data"]["train"]["windows"] > results["data"]["train"]["questions"]  # long contexts
    assert val["val/f1"] > 2.0
    preds = json.loads(Path(results["validation_predictions"]).read_text())
    theirs = official.evaluate_v1(dev, preds)
    assert (theirs["exact_match"], theirs["f1"]) == pytest.approx((val["val/exact_match"], val["val/f1"]), abs=1e-4)
