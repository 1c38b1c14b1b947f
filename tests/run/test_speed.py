"""The speed features end to end: buckets, packing, host read-backs per step, torch.compile."""
import json
import math
from collections import Counter

import pytest
import pytorch_lightning as pl
import torch

from conftest import run_cli
from host_syncs import record_host_syncs
from tokentune.run.fit import fit

# no dropout, so that runs which lay the same batches out differently compute the same thing
NO_DROPOUT = {
    "bert_tiny": ("+model.config.hidden_dropout_prob=0", "+model.config.attention_probs_dropout_prob=0"),
    "gpt2_tiny": ("+model.config.resid_pdrop=0", "+model.config.embd_pdrop=0", "+model.config.attn_pdrop=0"),
}
SHORT = ("trainer.max_epochs=1", "data.max_train_examples=160", "data.batch_size=16", "test=false",
         "callbacks.checkpoint=false")
# At the default init (std 0.02) a random tiny model attends almost uniformly and its logits are
# ~1e-3, so its loss is ln 2 whatever each token sees. A wider init makes every sequence's output
# depend on what its tokens attend to, and a higher rate carries that into the weights.
SENSITIVE = ("+model.config.initializer_range=0.2", "optimizer.lr=1e-3")


class StepLosses(pl.Callback):
    """The training loss of every step, read back (tests may wait on the device)."""

    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(outputs["loss"].item())


@pytest.mark.parametrize("model,layouts", [("bert_tiny", ("data.buckets=[16,32,64]", "data.packing=true")),
                                           ("gpt2_tiny", ("data.packing=true",))])
def test_buckets_and_packing_train_as_plain_padding(compose, tmp_path, trained_run, model, layouts):
    """Padding is masked and packed sequences see only themselves: the same 10 batches give the
    same loss at every step and end at the same model. Each run starts from a model that has left
    chance (trained_run's): at the default init a random tiny model attends almost uniformly and
    its logits are ~1e-3, so its loss is ln 2 whatever each token sees (a mask that let packed
    sequences see each other moved it by 6e-7)."""
    base = f"model.pretrained={trained_run(model)[1] / 'model'}"

    def run(name, *extra):
        steps = StepLosses()
        # NO_DROPOUT replaces the trained model's dropout settings (model.config on a pretrained model)
        results = fit(compose(f"model={model}", base, *NO_DROPOUT[model], "optimizer.lr=2e-4", *SHORT, *extra,
                              run_dir=tmp_path / name), extra_callbacks=[steps])
        return steps.losses, results["validation"]
    plain_losses, plain = run("plain")
    # off chance (0.5), and confident: the losses compared below are far from ln 2 (0.693), where
    # what each token attends to shows in them
    mean = sum(plain_losses) / len(plain_losses)
    assert plain["val/accuracy"] > 0.6 and len(plain_losses) == 10 and mean < 0.6, (plain, plain_losses)
    for i, layout in enumerate(layouts):
        losses, other = run(f"layout{i}", layout)
        assert losses == pytest.approx(plain_losses, rel=1e-5), layout
        assert other["val/loss"] == pytest.approx(plain["val/loss"], rel=1e-5), layout
        assert other["val/accuracy"] == plain["val/accuracy"], layout


class MarkSteps(pl.Callback):
    """Files every read-back under the training batch it happened in."""

    def __init__(self, syncs):
        self.syncs = syncs

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.syncs.step = batch_idx

    def on_train_epoch_end(self, trainer, pl_module):
        self.syncs.step = -1


MASK_CHECK = "transformers/masking_utils.py:_ignore_bidirectional_mask_sdpa"
# AdamW keeps step counts on the host unless fused (as on CUDA): reading them waits for nothing
HOST_STEP_COUNT = "torch/optim/optimizer.py:_get_value"
INTERVAL = ("trainer.max_epochs=1", "trainer.limit_train_batches=12", "trainer.limit_val_batches=1",
            "trainer.log_every_n_steps=5", "callbacks.refresh_rate=5", "callbacks.progress_bar=tqdm",
            "callbacks.checkpoint=false", "test=false")


def read_backs(log, step):
    return Counter(next((k for k in (MASK_CHECK, HOST_STEP_COUNT) if k in c.caller), c.site)
                   for c in log.at(step))


def test_training_reads_values_back_only_at_log_and_redraw_steps(compose):
    with record_host_syncs() as log:
        fit(compose("model=bert_tiny", *INTERVAL), extra_callbacks=[MarkSteps(log)])
    for step in range(12):
        seen = read_backs(log, step)
        # the module hands transformers a 4D mask, so it never reads the 2D one back for padding
        assert MASK_CHECK not in seen
        seen.pop(HOST_STEP_COUNT, None)
        if step in (4, 9, 11):  # log_every_n_steps=5 and refresh_rate=5 (and the epoch's last batch)
            sites = {site.rsplit("/", 1)[-1] for site in seen}
            assert {"progress.py:on_train_batch_end", "apply_func.py:to_item"} <= sites, seen
        else:
            assert not seen, f"step {step} read back: {seen}"


@pytest.fixture
def aot_eager(monkeypatch):
    """torch.compile with the aot_eager backend: dynamo's tracing, guards and recompiles and
    AOTAutograd's graphs, minus inductor's code generation (minutes of C++ builds on a CPU)."""
    real = torch.compile

    def compile_(fn, *, mode=None, **kwargs):
        return real(fn, backend="aot_eager", **kwargs)

    monkeypatch.setattr(torch, "compile", compile_)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["full", "lora"])
def test_compiled_run_matches_eager_and_its_checkpoint_reloads(compose, tmp_path, cache_dir, aot_eager,
                                                               method):
    # SENSITIVE: losses far from ln 2 and from each other, so that a difference shows
    args = ("model=bert_tiny", f"finetune={method}", "data.buckets=[32,64]", "trainer.max_epochs=2",
            "trainer.limit_train_batches=12", "trainer.log_every_n_steps=5", *SENSITIVE,
            *NO_DROPOUT["bert_tiny"])
    eager_steps, compiled_steps = StepLosses(), StepLosses()
    eager = fit(compose(*args, run_dir=tmp_path / "eager"), extra_callbacks=[eager_steps])
    with record_host_syncs() as log:
        compiled = fit(compose(*args, "model.compile=reduce-overhead", run_dir=tmp_path / "compiled"),
                       extra_callbacks=[MarkSteps(log), compiled_steps])
    losses = eager_steps.losses
    assert len(losses) == 24 and max(losses) - min(losses) > 0.1, losses
    assert compiled_steps.losses == pytest.approx(losses, rel=1e-4)  # every step's loss
    assert compiled["validation"] == pytest.approx(eager["validation"], rel=1e-4)
    weights = [torch.load(tmp_path / run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
               for run in ("eager", "compiled")]
    assert weights[0].keys() == weights[1].keys()
    for name, w in weights[0].items():
        torch.testing.assert_close(weights[1][name], w, rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: {m}")
    assert not [c for c in log.calls if MASK_CHECK in c.caller]  # traced into the graph
    ckpt = tmp_path / "compiled" / "checkpoints" / "best.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert saved and not [k for k in saved if "_orig_mod" in k]  # compiled in place: names unchanged
    out = run_cli("-m", "tokentune.cli_evaluate", f"ckpt_path={ckpt}", f"paths.cache_dir={cache_dir}",
                  "accelerator=cpu", f"hydra.run.dir={tmp_path / 'eval'}")
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert metrics == pytest.approx(compiled["validation"], rel=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_config_trains_without_syncs_between_log_steps(compose):
    """trainer=gpu (bf16, reduce-overhead, workers, pinned memory) with one bucket, so that every
    CUDA graph is recorded in the first steps: after that a step never waits for the GPU (no log
    step falls in the window; the compose fixture turns the progress bar off)."""
    class NoSyncs(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            torch.cuda.set_sync_debug_mode("error" if 6 <= batch_idx < 19 else "default")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            torch.cuda.set_sync_debug_mode("default")  # before Lightning's loggers run

    results = fit(compose("trainer=gpu", "model=bert_tiny", "data.buckets=[64]", "data.max_length=64",
                          "trainer.max_epochs=1", "trainer.limit_train_batches=20"),
                  extra_callbacks=[NoSyncs()])
    assert results["steps"] == 20 and math.isfinite(results["validation"]["val/loss"])
