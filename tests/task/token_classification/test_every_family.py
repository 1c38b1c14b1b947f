"""Token classification on every family of the registry: each one's tokenizer gives word
boundaries for every word, its *ForTokenClassification head is found and trained, and a few
steps on one batch of the synthetic corpus drive the loss down (full and LoRA)."""
from __future__ import annotations

import pytest
import pytorch_lightning as pl

from conftest import run_overrides
from task.token_classification.synthetic import overrides, task_folder
from tokentune.config import compose as compose_train
from tokentune.model.families import FAMILIES
from tokentune.run.fit import fit

STEPS = 40
TRAIN = ("optimizer.warmup_ratio=0", "data.max_train_examples=16", "data.batch_size=16",
         f"trainer.max_steps={STEPS}", "trainer.max_epochs=-1", f"trainer.check_val_every_n_epoch={STEPS}",
         "logger=none", "test=false", "export=false")


# LoRA on a random-init base adapts little per step: a higher rate (as tests/families/ uses)
RATES = {"full": 1e-2, "lora": 5e-2}


class Losses(pl.Callback):
    def __init__(self):
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return task_folder(tmp_path_factory.mktemp("ner-data"), train=16, validation=16)


@pytest.mark.parametrize("method", ["full", "lora"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_aligns_every_word_and_learns_one_batch(folder, tmp_path, cache_dir, family, method):
    losses = Losses()
    results = fit(compose_train(run_overrides(cache_dir, tmp_path) + overrides(folder) + [
        f"model={family}_tiny", f"finetune={method}", f"optimizer.lr={RATES[method]}", *TRAIN]),
        extra_callbacks=[losses])
    assert results["data"]["train"] == {"sentences": 16, "truncated_words": 0, "unaligned_words": 0}
    first, last = sum(losses.losses[:4]) / 4, sum(losses.losses[-4:]) / 4
    assert last < 0.5 * first, f"{family}/{method}: the loss went from {first:.3f} to {last:.3f}"
    p = results["parameters"]
    assert (p["trainable"] == p["total"]) == (method == "full")
