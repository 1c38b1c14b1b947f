"""run/model: the best weights as a folder that loads the standard way, without tokentune, and
computes what the run computed."""
import types

import pytest
import torch
from conftest import run_cli
from exported import dev_metrics
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from tokentune.config import validate
from tokentune.run.fit import fit

# off chance on the demo (see test_trim_trains_the_same.py), so that the weights compared are learnt
LEARNS = ("trainer.max_epochs=8", "optimizer.lr=2e-3", "data.batch_size=16")


# full and LoRA, BERT and GPT-2, the backbone's vocabulary and one built from the task (whose
# embeddings LoRA trains in place); a trimmed vocabulary: tests/run/test_trim_trains_the_same.py
@pytest.mark.parametrize("overrides", [
    ("model=bert_tiny", "finetune=full"),
    ("model=gpt2_tiny", "finetune=full"),
    ("model=bert_tiny", "finetune=lora", "tokenizer=bpe8k", "tokenizer.vocab_size=400"),
], ids=["bert-full", "gpt2-full", "bert-lora-bpe"])
def test_exported_classifier_scores_the_dev_split_as_the_run_did(compose, tmp_path, overrides):
    dcfg = compose(*overrides, *LEARNS)
    results = fit(dcfg)
    assert results["validation"]["val/accuracy"] > 0.65  # chance: 0.5 on the balanced dev split
    folder = tmp_path / "model"
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    got = dev_metrics(folder, validate(dcfg))
    assert got == pytest.approx({k: results["validation"][k] for k in got}, abs=1e-6)
    card = (folder / "README.md").read_text()
    method = next(o.split("=")[1] for o in overrides if o.startswith("finetune="))
    for line in (f"- fine-tuning: {method} ", f"val/accuracy {results['validation']['val/accuracy']:.4f}",
                 f"- parameters: {results['parameters']['trainable']:,} trained of {results['parameters']['total']:,}",
                 f"- vocabulary: tokenizer=", f"{results['vocabulary']['vocab_size']:,} tokens",
                 "- texts (lines, for a causal LM): train 405, validation 90", "- commit: "):
        assert line in card, line
    assert results["model_mb"] == pytest.approx(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20)
    classify = pipeline("text-classification", model=str(folder))
    assert classify("a lovely film")[0]["label"] in ("0", "1")  # the task's labels, not LABEL_0
    if "finetune=lora" in overrides:
        import peft

        adapter = folder / "adapter"
        assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in adapter.iterdir()}
        assert peft.PeftConfig.from_pretrained(adapter).peft_type == peft.PeftType.LORA


def test_exported_causal_lm_generates(compose, tmp_path):
    results = fit(compose("model=gpt2_tiny", "task=shakespeare", "task.block_size=64",
                          "trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.limit_val_batches=2", "data.batch_size=8"))
    folder = tmp_path / "model"
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert model.config.vocab_size == results["vocabulary"]["vocab_size"]
    ids = tokenizer("ROMEO:", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape == (1, ids.shape[1] + 5)


def test_a_second_export_replaces_the_first_whole(compose, tmp_path):
    from tokentune.run.export import export_model

    fit(compose("model=bert_tiny", "finetune=full", "trainer.max_epochs=1", "trainer.limit_train_batches=2"))
    before = sorted(p.name for p in (tmp_path / "model").iterdir())
    (tmp_path / "model" / "stale.txt").write_text("from an earlier run")
    cfg = validate(compose("model=bert_tiny", "finetune=full"))

    class Boom(Exception):
        pass

    class Broken(torch.nn.Module):  # fails half-way through writing
        config = types.SimpleNamespace()

        def save_pretrained(self, out):
            (out / "config.json").write_text("{}")
            raise Boom

    with pytest.raises(Boom):
        export_model(Broken(), None, cfg, tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == sorted(before + ["stale.txt"])  # untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]  # nothing left behind


def test_tokentune_export_writes_what_the_run_wrote_and_names_a_missing_base(compose, tmp_path, cache_dir):
    from safetensors.torch import load_file

    fit(compose("model=bert_tiny", "finetune=lora", "trainer.max_epochs=1", "trainer.limit_train_batches=3"))
    ckpt = tmp_path / "checkpoints" / "best.ckpt"
    out = run_cli("-m", "tokentune.cli_export", f"ckpt_path={ckpt}", f"out={tmp_path / 'exported'}",
                  f"paths.cache_dir={cache_dir}", f"hydra.run.dir={tmp_path / 'export_run'}")
    assert out.returncode == 0, out.stderr[-2000:]
    run, cli = (load_file(tmp_path / d / "model.safetensors") for d in ("model", "exported"))
    assert run.keys() == cli.keys()
    for name, weight in run.items():
        assert torch.equal(cli[name], weight), name
    assert (tmp_path / "exported" / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "exported" / "README.md").read_text() == (tmp_path / "model" / "README.md").read_text()

    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["hyper_parameters"]["cfg"]["model"]["pretrained"] = str(tmp_path / "no-such-model")
    torch.save(checkpoint, tmp_path / "moved.ckpt")
    out = run_cli("-m", "tokentune.cli_export", f"ckpt_path={tmp_path / 'moved.ckpt'}",
                  f"out={tmp_path / 'never'}", f"paths.cache_dir={cache_dir}",
                  f"hydra.run.dir={tmp_path / 'export_run2'}")
    assert out.returncode == 2 and out.stderr.startswith("error: model.pretrained"), out.stderr[-2000:]
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "never").exists()
