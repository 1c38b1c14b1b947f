"""run/model: the best weights as a folder that loads the standard way, without tokentune, and
computes what the run computed."""
import types

import pytest
import torch
from conftest import LEARNS, run_cli
from exported import checkpoint_model, dev_logits, dev_metrics, load_standard_way, peft_base
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

import tokentune
from tokentune.config import validate
from tokentune.errors import UserError
from tokentune.finetune import METHODS
from tokentune.model.families import FAMILIES
from tokentune.run.fit import fit

BPE = ("tokenizer=bpe8k", "tokenizer.vocab_size=400")


# every method, BERT and GPT-2, the backbone's vocabulary and one built from the task (whose
# embeddings the PEFT methods train in place and export); a trimmed vocabulary:
# tests/run/test_trim_trains_the_same.py. base: "random" (the tiny model's seeded initialisation)
# or "trained" (model.pretrained = the full run's model/ folder, a local base as a hub id would be)
@pytest.mark.parametrize("model, method, base, extra", [
    ("bert_tiny", "full", "random", ()),
    ("gpt2_tiny", "full", "random", ()),
    ("bert_tiny", "lora", "random", BPE),
    ("gpt2_tiny", "lora", "trained", ()),
    ("bert_tiny", "prefix", "trained", ()),
    ("gpt2_tiny", "prefix", "trained", BPE),
    ("bert_tiny", "adapter", "trained", ()),
    ("gpt2_tiny", "adapter", "trained", BPE),
    ("bert_tiny", "lora", "trained", ("finetune.use_dora=true",)),
    ("bert_tiny", "ia3", "trained", ()),
    ("gpt2_tiny", "ia3", "trained", BPE),
], ids=["bert-full", "gpt2-full", "bert-lora-bpe", "gpt2-lora", "bert-prefix", "gpt2-prefix-bpe",
        "bert-adapter", "gpt2-adapter-bpe", "bert-dora", "bert-ia3", "gpt2-ia3-bpe"])
def test_exported_classifier_scores_the_dev_split_as_the_run_did(compose, tmp_path, cache_dir, trained_run,
                                                                   model, method, base, extra):
    if method == "full":
        dcfg, tmp_path, results = trained_run(model)
    else:
        pretrained = (f"model.pretrained={trained_run(model)[1] / 'model'}",) if base == "trained" else ()
        dcfg = compose(f"model={model}", f"finetune={method}", *pretrained, *extra, *LEARNS)
        results = fit(dcfg)
    assert results["validation"]["val/accuracy"] > 0.65  # chance: 0.5 on the balanced dev split
    folder = tmp_path / "model"
    assert (folder / "tokenizer.json").is_file()
    standard = load_standard_way(folder)
    got = dev_metrics(folder, validate(dcfg), standard)
    assert got == pytest.approx({k: results["validation"][k] for k in got}, abs=1e-6)
    # the same logits as the checkpoint, loaded the standard way and by tokentune's one loader
    cfg = validate(dcfg)
    logits = dev_logits(standard, folder, cfg)[0]
    module = checkpoint_model(tmp_path / "checkpoints" / "best.ckpt", cache_dir, tmp_path / "eval")
    for loaded in (lambda **batch: module(batch), tokentune.load_model(folder)):
        assert torch.allclose(dev_logits(loaded, folder, cfg)[0], logits, atol=1e-5, rtol=0)
    card = (folder / "README.md").read_text()
    for line in (f"- fine-tuning: {method} ", f"val/accuracy {results['validation']['val/accuracy']:.4f}",
                 f"- parameters: {results['parameters']['trainable']:,} trained of {results['parameters']['total']:,}",
                 f"- vocabulary: tokenizer=", f"{results['vocabulary']['vocab_size']:,} tokens",
                 "- texts (lines, for a causal LM): train 405, validation 90", "- commit: "):
        assert line in card, line
    assert results["model_mb"] == pytest.approx(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20)
    if method in ("full", "lora", "ia3"):
        classify = pipeline("text-classification", model=str(folder))
        assert classify("a lovely film")[0]["label"] in ("0", "1")  # the task's labels, not LABEL_0
    if method in ("lora", "ia3"):
        import peft

        adapter = folder / "adapter"
        assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in adapter.iterdir()}
        assert peft.PeftConfig.from_pretrained(adapter).peft_type == getattr(peft.PeftType, method.upper())
        lora = peft.PeftModel.from_pretrained(peft_base(adapter.parent), adapter).eval()
        assert dev_metrics(folder, cfg, lora) == pytest.approx(got, abs=1e-6)
    if method in ("prefix", "adapter"):  # the small formats: the trained weights, not the base
        base_mb = sum(p.numel() for p in standard.parameters()) * 4 / 2**20
        assert results["model_mb"] < base_mb
    if method == "adapter":  # a weight the rebuilt model has no place for is named, not dropped
        from safetensors.torch import load_file, save_file

        weights = load_file(folder / "bottleneck_adapter.safetensors")
        save_file({**weights, "classifier.extra": torch.zeros(1)}, folder / "bottleneck_adapter.safetensors")
        with pytest.raises(UserError, match=r"1 exported weights fit no module .*first: classifier.extra"):
            tokentune.load_model(folder)
    with pytest.raises(UserError, match="no tokentune.json; not a model folder exported by tokentune"):
        tokentune.load_model(tmp_path / "checkpoints")


LINE = "ROMEO: But soft, what light through yonder window breaks?\n"


@pytest.mark.parametrize("name", [n for n in sorted(FAMILIES) if FAMILIES[n].lm_head])
def test_exported_causal_lm_scores_and_generates_as_trained(compose, tmp_path, name):
    # its own text, not tinyshakespeare: real data is absent from a user's clone
    data = tmp_path / "text"
    data.mkdir()
    (data / "input.txt").write_text(LINE * 300)
    results = fit(compose(f"model={name}_tiny", "task=shakespeare", f"task.data_dir={data}", "task.block_size=64",
                          "trainer.max_epochs=4", "trainer.limit_val_batches=2",
                          "data.batch_size=8", "optimizer.lr=1e-2", "optimizer.warmup_ratio=0"))
    folder = tmp_path / "model"
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert model.config.model_type == FAMILIES[name].model_type
    assert model.config.vocab_size == results["vocabulary"]["vocab_size"]
    ids = tokenizer(LINE * 2, return_tensors="pt").input_ids[:, :64]
    with torch.no_grad():
        perplexity = model(ids, labels=ids).loss.exp().item()
    # the run learnt the line (1.17 or less; uniform over 257 byte tokens is 257) and the folder
    # scores it as the run did
    assert perplexity < 1.5 and perplexity == pytest.approx(results["validation"]["val/perplexity"], rel=0.1)
    prompt = tokenizer("ROMEO: But soft,", return_tensors="pt").input_ids  # within the 64 positions it trained on
    out = model.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert tokenizer.decode(out[0, prompt.shape[1]:]) == " what li"


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

    # a results.json cut short: the export is written, without a card, and says why
    whole = (tmp_path / "results.json").read_text()
    (tmp_path / "results.json").write_text(whole[: len(whole) // 2])
    out = run_cli("-m", "tokentune.cli_export", f"ckpt_path={ckpt}", f"out={tmp_path / 'uncarded'}",
                  f"paths.cache_dir={cache_dir}", f"hydra.run.dir={tmp_path / 'export_run3'}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "uncarded" / "model.safetensors").is_file()
    assert not (tmp_path / "uncarded" / "README.md").exists()
    assert f"{tmp_path / 'results.json'}: " in out.stdout + out.stderr
    assert "; the export has no model card" in out.stdout + out.stderr

    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["hyper_parameters"]["cfg"]["model"]["pretrained"] = str(tmp_path / "no-such-model")
    torch.save(checkpoint, tmp_path / "moved.ckpt")
    out = run_cli("-m", "tokentune.cli_export", f"ckpt_path={tmp_path / 'moved.ckpt'}",
                  f"out={tmp_path / 'never'}", f"paths.cache_dir={cache_dir}",
                  f"hydra.run.dir={tmp_path / 'export_run2'}")
    assert out.returncode == 2 and out.stderr.startswith("error: model.pretrained"), out.stderr[-2000:]
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "never").exists()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_the_exported_labels_are_in_the_order_the_run_trained_with(compose, tmp_path, method):
    from transformers import AutoConfig

    # labels in other than sorted order, so that a map in sorted order (or reversed) shows: the
    # demo's label "1" is class 0 here. One step: the labels, not the weights, are under test
    dcfg = compose("model=bert_tiny", f"finetune={method}", 'task.labels=["1","0"]', "trainer.max_epochs=1",
                   "trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "test=false")
    assert validate(dcfg).task.labels == ["1", "0"]
    fit(dcfg)
    folder = tmp_path / "model"
    want = ({0: "1", 1: "0"}, {"1": 0, "0": 1})
    loaded = tokentune.load_model(folder)
    assert (loaded.config.id2label, loaded.config.label2id) == want
    if METHODS[method].transformers_folder:  # what transformers alone reads
        config = AutoConfig.from_pretrained(folder)
        assert (config.id2label, config.label2id) == want
        classify = pipeline("text-classification", model=str(folder), top_k=None)
        with torch.no_grad():
            logits = loaded(**AutoTokenizer.from_pretrained(folder)("a lovely film", return_tensors="pt")).logits[0]
        scores = {row["label"]: row["score"] for row in classify(["a lovely film"])[0]}
        assert scores == pytest.approx({"1": logits.softmax(-1)[0].item(), "0": logits.softmax(-1)[1].item()})
