"""Every entry of the family registry, tested end to end from the entry alone.

Parametrized over tokentune.model.families.FAMILIES, so a new entry gets these tests without
editing this file; it needs conf/model/<name>_tiny.yaml, a small random-init model. Each
family: its entry is complete, its configs compose, it trains (LoRA) and its PEFT-only
checkpoint rebuilds the trained model, a vocabulary built for it takes its embeddings from the
backbone's, and where it packs, a packed batch computes what the padded one does.
"""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml

from conftest import CONF, run_overrides
from tokentune.config import compose as compose_train, validate
from tokentune.errors import ConfigError
from tokentune.finetune import METHODS
from tokentune.model.families import FAMILIES, POOLS, get_family
from tokentune.vocab.spec import POST_PROCESSORS, PRE_TOKENIZERS

NAMES = sorted(FAMILIES)
ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# LoRA on one batch of 16 demo rows, 24 times over: a random-init tiny model memorises it (tiny
# BERT stays at chance for longer on more rows); validated once, at the end. At 5e-2 tiny GPT-2's
# loss swings between 0.2 and 0.7 to the last step; at 2e-2 every family ends below 0.1.
STEPS = 96  # a tiny RoBERTa reading bytes through its first token needs about this many (0.69 -> 0.07)
TRAIN = ("task=demo", "finetune=lora", "optimizer.lr=2e-2", "optimizer.warmup_ratio=0",
         "data.max_train_examples=16", "data.batch_size=16", f"trainer.max_steps={STEPS}",
         "trainer.max_epochs=-1", f"trainer.check_val_every_n_epoch={STEPS}", "logger=none",
         "test=false", "export=false")


def tiny(name: str) -> str:
    return f"model={name}_tiny"


def compose(cache_dir: Path, run_dir: Path, *overrides: str):
    return compose_train(run_overrides(cache_dir, run_dir) + list(overrides))


@pytest.mark.parametrize("name", NAMES)
def test_the_entry_is_complete(name):
    fam = FAMILIES[name]
    assert fam.name == name
    tiny_yaml = CONF / "model" / f"{name}_tiny.yaml"
    assert tiny_yaml.is_file(), f"family {name}: add {tiny_yaml.relative_to(CONF.parent)} (a random-init model)"
    option = yaml.safe_load(tiny_yaml.read_text())
    assert option["family"] == name and option.get("pretrained") is None and option["config"]
    assert fam.pool in POOLS
    assert {"input_ids", "attention_mask"} <= set(fam.input_names)
    assert set(fam.special_tokens) <= set(ROLES) and set(fam.required_roles) <= set(fam.special_tokens)
    assert fam.pad_with is None or fam.pad_with in ROLES
    assert fam.pre_tokenizer in PRE_TOKENIZERS and fam.post_processor in (*POST_PROCESSORS, None)
    assert fam.lora_targets and fam.attention_site and fam.ffn_site and fam.fsdp_units
    for path in fam.fsdp_units:
        module, _, cls = path.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), cls), type), path


@pytest.mark.parametrize("name", NAMES)
def test_blocks_are_the_transformer_blocks_fsdp_shards(cache_dir, tmp_path, name):
    from tokentune.model.backbone import load_backbone
    from tokentune.model.compile import repeated_blocks

    cfg = validate(compose(cache_dir, tmp_path, tiny(name), "task=demo"))
    model = load_backbone(cfg.model, cfg.task, pad_token_id=0, seed=0)
    blocks = repeated_blocks(model, name)  # what model.compile compiles one by one
    assert len(blocks) == model.config.num_hidden_layers
    assert {type(b).__name__ for b in blocks} <= {p.rpartition(".")[2] for p in FAMILIES[name].fsdp_units}


# What each method does to a family's model when its config names no modules: the modules LoRA
# wraps (finetune.target_modules=null), IA3 rescales and the houlsby adapters wrap, per block ({i}),
# from the model's root. A new family adds its row.
DEFAULTS = {
    "bert": {"lora": ["bert.encoder.layer.{i}.attention.self.query", "bert.encoder.layer.{i}.attention.self.value"],
             "ia3": ["bert.encoder.layer.{i}.attention.output.dense", "bert.encoder.layer.{i}.attention.self.key",
                     "bert.encoder.layer.{i}.attention.self.value", "bert.encoder.layer.{i}.output.dense"],
             "adapter": ["bert.encoder.layer.{i}.attention.output.dropout", "bert.encoder.layer.{i}.output.dropout"]},
    "deberta": {"lora": ["deberta.encoder.layer.{i}.attention.self.query_proj",
                         "deberta.encoder.layer.{i}.attention.self.value_proj"],
                "ia3": ["deberta.encoder.layer.{i}.attention.output.dense",
                        "deberta.encoder.layer.{i}.attention.self.key_proj",
                        "deberta.encoder.layer.{i}.attention.self.value_proj", "deberta.encoder.layer.{i}.output.dense"],
                "adapter": ["deberta.encoder.layer.{i}.attention.output.dropout",
                            "deberta.encoder.layer.{i}.output.dropout"]},
    "gpt2": {"lora": ["transformer.h.{i}.attn.c_attn"],
             "ia3": ["transformer.h.{i}.attn.c_attn", "transformer.h.{i}.mlp.c_proj"],
             "adapter": ["transformer.h.{i}.attn.resid_dropout", "transformer.h.{i}.mlp.dropout"]},
    "llama": {"lora": ["model.layers.{i}.self_attn.q_proj", "model.layers.{i}.self_attn.v_proj"],
              "ia3": ["model.layers.{i}.mlp.down_proj", "model.layers.{i}.self_attn.k_proj",
                      "model.layers.{i}.self_attn.v_proj"],
              "adapter": ["model.layers.{i}.mlp.down_proj", "model.layers.{i}.self_attn.o_proj"]},
    "modernbert": {"lora": ["model.layers.{i}.attn.Wqkv"],
                   "ia3": [],  # refused: peft names no IA3 targets for it
                   "adapter": ["model.layers.{i}.attn.Wo", "model.layers.{i}.mlp.Wo"]},
    "qwen2": {"lora": ["model.layers.{i}.self_attn.q_proj", "model.layers.{i}.self_attn.v_proj"],
              "ia3": ["model.layers.{i}.mlp.down_proj", "model.layers.{i}.self_attn.q_proj",
                      "model.layers.{i}.self_attn.v_proj"],
              "adapter": ["model.layers.{i}.mlp.down_proj", "model.layers.{i}.self_attn.o_proj"]},
    "roberta": {"lora": ["roberta.encoder.layer.{i}.attention.self.query",
                         "roberta.encoder.layer.{i}.attention.self.value"],
                "ia3": ["roberta.encoder.layer.{i}.attention.output.dense",
                        "roberta.encoder.layer.{i}.attention.self.key",
                        "roberta.encoder.layer.{i}.attention.self.value", "roberta.encoder.layer.{i}.output.dense"],
                "adapter": ["roberta.encoder.layer.{i}.attention.output.dropout",
                            "roberta.encoder.layer.{i}.output.dropout"]},
}


@pytest.mark.parametrize("name", NAMES)
def test_each_method_s_default_modules_are_the_family_s_row(cache_dir, tmp_path, name):
    import peft
    from transformers.pytorch_utils import Conv1D

    from tokentune.finetune.adapter.layer import AdapterLayer
    from tokentune.finetune.apply import apply
    from tokentune.model.backbone import load_backbone

    assert name in DEFAULTS, f"family {name}: add its row to DEFAULTS (the modules each method takes by default)"
    layers = {"lora": peft.tuners.lora.LoraLayer, "ia3": peft.tuners.ia3.IA3Layer, "adapter": AdapterLayer}
    for method, want in DEFAULTS[name].items():
        if not want:
            assert not _takes(name, method)
            continue
        houlsby = ("finetune.placement=houlsby",) if method == "adapter" else ()
        cfg = validate(compose(cache_dir, tmp_path, tiny(name), "task=demo", f"finetune={method}", *houlsby))
        model = apply(cfg.finetune, load_backbone(cfg.model, cfg.task, pad_token_id=0, seed=0), family=name,
                      task_kind="classification")
        wrapped = {n.removeprefix("base_model.model."): m for n, m in model.named_modules()
                   if isinstance(m, layers[method])}
        blocks = model.config.num_hidden_layers
        assert sorted(wrapped) == sorted(path.format(i=i) for path in want for i in range(blocks)), method
        if method == "lora":  # projections stored (in, out) are transformers' Conv1D
            assert {isinstance(m.get_base_layer(), Conv1D) for m in wrapped.values()} == {FAMILIES[name].fan_in_fan_out}
    # the defaults are peft's own where peft has them for the model type
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as LORA

    if FAMILIES[name].model_type in LORA:
        assert list(FAMILIES[name].lora_targets) == LORA[FAMILIES[name].model_type]


def test_an_unknown_family_is_one_line_naming_the_known_ones(compose):
    with pytest.raises(ConfigError) as err:
        get_family("t5")
    assert str(err.value) == (f"model.family: 't5' is not one of {tuple(FAMILIES)} "
                              "(the entries of tokentune/model/families.py)")
    with pytest.raises(ConfigError, match=r"^model.family: 't5' is not one of"):
        validate(compose("model=bert_tiny", "model.family=t5"))


def test_a_family_without_a_packed_head_refuses_packing_at_composition(compose, monkeypatch):
    monkeypatch.setitem(FAMILIES, "nopack", dataclasses.replace(FAMILIES["bert"], name="nopack", packed_head=None))
    assert validate(compose("model=bert_tiny", "model.family=nopack")).model.family == "nopack"
    with pytest.raises(ConfigError) as err:
        validate(compose("model=bert_tiny", "model.family=nopack", "data.packing=true"))
    assert str(err.value) == ("data.packing: nopack models have no packed classification head "
                              "(tokentune/model/families.py); use data.packing=false")


@pytest.mark.parametrize("name", [n for n in NAMES if not FAMILIES[n].prefix])
def test_prefix_tuning_is_refused_in_one_line_before_any_model_is_built(compose, name):
    from tokentune.finetune.apply import apply

    with pytest.raises(ConfigError) as err:  # at composition, from the config alone
        validate(compose(tiny(name), "task=demo", "finetune=prefix"))
    assert str(err.value) == (f"finetune: prefix tuning feeds its virtual tokens to every layer as a "
                              f"key/value cache, which {name} models do not take "
                              "(tokentune/model/families.py); use finetune=lora, adapter or full")
    with pytest.raises(ConfigError, match=r"^finetune: prefix tuning"):  # evaluate, export: through apply
        apply({"method": "prefix"}, torch.nn.Module(), family=name, task_kind="classification")


# a task file of each kind
TASKS = {"classification": "demo", "regression": "demo", "causal_lm": "shakespeare",
         "token_classification": "conll2003", "extractive_qa": "squad"}


@pytest.mark.parametrize("name", NAMES)
def test_composes_with_each_task_kind_it_supports(compose, name):
    for kind in get_family(name).task_kinds:
        overrides = [tiny(name), f"task={TASKS[kind]}"]
        if kind == "regression":
            overrides += ["task.kind=regression", "task.labels=null", "task.metrics=[pearson]",
                          "task.monitor=pearson"]
        cfg = validate(compose(*overrides))
        assert (cfg.model.family, cfg.task.kind) == (name, kind)


class Losses(pl.Callback):
    def __init__(self):
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))


@pytest.fixture(scope="module", params=NAMES)
def trained(request, cache_dir, tmp_path_factory):
    """A LoRA run of the family's tiny model: (family name, config, results, step losses)."""
    from tokentune.run.fit import fit

    name = request.param
    run_dir = tmp_path_factory.mktemp(f"{name}-lora")
    dcfg = compose(cache_dir, run_dir, tiny(name), *TRAIN)
    losses = Losses()
    return name, dcfg, fit(dcfg, extra_callbacks=[losses]), losses.losses


def test_trains_a_few_steps(trained):
    name, _, results, losses = trained
    assert results["steps"] == len(losses) == STEPS
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.75 * first, f"{name}: the loss went from {first:.3f} to {last:.3f} in {STEPS} steps"
    p = results["parameters"]
    assert 0 < p["trainable"] < p["total"] / 5 and p["groups"]["head"]["trainable"] > 0


def test_the_peft_checkpoint_holds_only_what_trained_and_rebuilds_the_run(trained):
    from tokentune.run.restore import load_weights

    name, dcfg, results, _ = trained
    fam, cfg = get_family(name), validate(dcfg)
    saved = torch.load(results["best_checkpoint"], weights_only=True)["state_dict"]
    heads = (fam.cls_head, *fam.head_extras)
    assert saved and all("lora_" in k or any(f".{h}." in k for h in heads) for k in saved), sorted(saved)
    for head in heads:  # the head (and any untrained pooler) trains in full and is kept
        assert any(f".{head}." in k for k in saved), f"{name}: no {head} weights in {sorted(saved)}"
    assert sum(t.numel() for t in saved.values()) == results["parameters"]["trainable"]

    dm = prepared(cfg)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         default_root_dir=cfg.paths.output_dir)
    rebuilt = trainer.validate(load_weights(results["best_checkpoint"], module_for(cfg, dm), trainer),
                               datamodule=dm, verbose=False)[0]
    assert rebuilt == pytest.approx(results["validation"], rel=1e-6, abs=1e-7)
    untrained = module_for(cfg, dm)
    untrained.configure_model()
    fresh = trainer.validate(untrained, datamodule=dm, verbose=False)[0]
    assert fresh["val/loss"] != pytest.approx(results["validation"]["val/loss"], rel=1e-6)


def _takes(name: str, method: str) -> bool:
    try:
        METHODS[method].check_family(FAMILIES[name])
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("name, method", [(n, m) for n in NAMES for m in METHODS if _takes(n, m)])
def test_every_method_it_takes_is_wired_into_the_forward_pass(cache_dir, tmp_path, name, method):
    """One step on what the method trains, the task head held still, changes the logits; what it
    freezes stays as it was."""
    fam = get_family(name)
    houlsby = ("finetune.placement=houlsby",) if method == "adapter" else ()
    cfg = validate(compose(cache_dir, tmp_path, tiny(name), "task=demo", f"finetune={method}", *houlsby))
    dm = prepared(cfg)
    module = module_for(cfg, dm)
    module.configure_model()
    model = module.model.eval()  # no dropout: the logits change only through the step
    if method == "adapter":  # houlsby: one after attention, one after the feed-forward, per block
        from tokentune.finetune.adapter.layer import AdapterLayer
        n_adapters = sum(isinstance(m, AdapterLayer) for m in model.modules())
        assert n_adapters == 2 * model.config.num_hidden_layers
    batch = collate_rows(dm)
    before = model(**batch).logits.detach()
    model(**batch).loss.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert trainable and all(p.grad is not None for p in trainable.values()), sorted(trainable)
    heads = (fam.cls_head, *fam.head_extras)
    stepped = [p for n, p in trainable.items() if method == "full" or not set(n.split(".")) & set(heads)]
    assert stepped, f"{name} {method}: nothing trains but the head"
    # IA3's vectors are scales around 1 on a tiny random model whose logits barely move (5 % on
    # every vector moved DeBERTa's by 2.7e-5): its step is 50 %; the others add to weights
    step = 0.5 if method == "ia3" else 0.05
    with torch.no_grad():
        for p in stepped:
            p -= p.grad.sign() * step
    after = model(**batch).logits.detach()
    assert not torch.allclose(after, before, atol=1e-4), f"{name} {method}: the step left the logits as they were"
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), f"{name} {method}: frozen {n} moved"


def module_for(cfg, dm):
    """The run's module, untrained, on the CPU, with the datamodule's vocabulary."""
    from tokentune.model.module import TaskModule

    return TaskModule(cfg, tokenizer=dm.tokenizer, base_tokenizer=dm.base_tokenizer, device="cpu")


def decays(model: torch.nn.Module, name: str) -> bool:
    """The rule of BERT's optimizer, by what a parameter is rather than its shape: no weight decay
    on biases and on the gains of normalisation layers (LayerNorm, RMSNorm), decay on the rest."""
    owner, _, leaf = name.rpartition(".")
    return leaf != "bias" and "Norm" not in type(model.get_submodule(owner)).__name__


# every family in full (each weight of its own layers trains), and every method on one family
# (the weights each method adds)
GROUPED = [(n, "full") for n in NAMES] + [("bert", m) for m in METHODS if m != "full"]


@pytest.mark.parametrize("name, method", GROUPED)
def test_the_optimizer_decays_weights_but_not_biases_or_norms(cache_dir, tmp_path, name, method):
    from tokentune.model.module import TaskModule
    from tokentune.model.tokenizer import load_base_tokenizer

    cfg = validate(compose(cache_dir, tmp_path, tiny(name), "task=demo", f"finetune={method}",
                           "optimizer.weight_decay=0.03"))
    tokenizer = load_base_tokenizer(cfg.model)
    module = TaskModule(cfg, tokenizer=tokenizer, base_tokenizer=tokenizer, device="cpu")
    module.configure_model()
    groups = module.optimization(10, "32-true")["optimizer"].param_groups
    model = module.model
    named = {id(p): n for n, p in model.named_parameters()}
    got = [(g["weight_decay"], sorted(named[id(p)] for p in g["params"])) for g in groups]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert got == [(0.03, sorted(n for n in trainable if decays(model, n))),
                   (0.0, sorted(n for n in trainable if not decays(model, n)))]
    assert got[0][1] and got[1][1]
    if (name, method) == ("bert", "lora"):  # the rule spelled out once: LoRA's matrices and the head's weight decay
        assert got[1][1] == ["base_model.model.classifier.modules_to_save.default.bias"]
        assert [n.split(".")[-3] for n in got[0][1]] == ["lora_A", "lora_B"] * 4 + ["modules_to_save"]
    if method == "full":  # every family normalises: its gains are in the group without decay
        assert any(n.endswith(".weight") for n in got[1][1])


@pytest.mark.parametrize("name", [n for n in NAMES if _takes(n, "adapter")])
def test_an_adapter_after_the_add_reads_the_stream_there(cache_dir, tmp_path, name):
    """finetune.original_ln_before (the entry's attention_add and ffn_add): the feed-forward adapter
    reads what its block puts out, the attention one what the block hands its feed-forward add."""
    from tokentune.finetune.adapter.layer import AdapterLayer
    fam = get_family(name)
    cfg = validate(compose(cache_dir, tmp_path, tiny(name), "task=demo", "finetune=adapter",
                           "finetune.placement=houlsby", "finetune.original_ln_before=true"))
    dm = prepared(cfg)
    module = module_for(cfg, dm)
    module.configure_model()
    model = module.model.eval()
    seen = {}

    def keep(key, arg=0):
        return lambda _module, args, *out: seen.__setitem__(key, out[0] if out else args[arg])

    blocks = model.base_model.get_submodule(fam.blocks)
    for i, block in enumerate(blocks):
        block.register_forward_hook(keep(("block output", i)))
        block.get_submodule(fam.ffn_add.module).register_forward_pre_hook(keep(("ffn residual", i), fam.ffn_add.arg))
        for site in ("attention", "ffn"):
            layer = block.get_submodule(getattr(fam, f"{site}_site"))
            assert isinstance(layer, AdapterLayer) and layer.residual_arg is not None
            layer.adapter.down.register_forward_pre_hook(keep((site, i)))
    with torch.no_grad():
        model(**collate_rows(dm))
    for i in range(len(blocks)):
        out = seen["block output", i]
        torch.testing.assert_close(seen["ffn", i], out[0] if isinstance(out, tuple) else out, rtol=0, atol=1e-6)
        torch.testing.assert_close(seen["attention", i], seen["ffn residual", i], rtol=0, atol=1e-6)


def prepared(cfg):
    """The task's datamodule, read, tokenized and ready to serve."""
    from tokentune.data.datamodule import TaskDataModule

    dm = TaskDataModule(cfg)
    dm.prepare_data()
    return dm


@pytest.mark.parametrize("method", ["adapter", "lora"])
@pytest.mark.parametrize("name", [n for n in NAMES if FAMILIES[n].head_extras])
def test_peft_methods_train_what_a_pretrained_checkpoint_lacks(cache_dir, tmp_path, name, method):
    from tokentune.finetune.apply import apply
    from tokentune.finetune.report import parameter_report
    from tokentune.model.backbone import load_backbone

    fam, cfg = get_family(name), validate(compose(cache_dir, tmp_path, tiny(name), "task=demo"))
    model = load_backbone(cfg.model, cfg.task, pad_token_id=0, seed=0)
    tuned = apply({"method": method}, model, family=name, task_kind="classification")
    trainable = [n for n, p in tuned.named_parameters() if p.requires_grad]
    for head in (fam.cls_head, *fam.head_extras):  # e.g. deberta-v3's pooler, random until trained
        assert any(head in n.split(".") for n in trainable), f"{name} {method}: {head} is frozen"
    report = parameter_report(tuned)["groups"]
    extras = sum(p.numel() for n, p in model.named_parameters()
                 if n.split(".")[0] in fam.head_extras and "modules_to_save" not in n)
    assert report["head"]["trainable"] > extras > 0 and report["other"]["trainable"] == 0


# regression's head is classification's; a causal LM's tied output layer trains under no PEFT method
HEADED_KINDS = ("classification", "token_classification", "extractive_qa")


@pytest.mark.parametrize("name, kind", [(n, k) for n in NAMES for k in HEADED_KINDS if k in FAMILIES[n].task_kinds])
def test_every_peft_method_it_takes_trains_each_kinds_head(cache_dir, tmp_path, name, kind):
    """Whatever transformers calls the head (ModernBERT's question-answering head is `classifier`,
    where peft's QUESTION_ANS trains only `qa_outputs`), the PEFT methods train it in full."""
    from tokentune.finetune.apply import apply
    from tokentune.finetune.report import parameter_report
    from tokentune.model.backbone import load_backbone
    from tokentune.task import get_kind

    fam, cfg = get_family(name), validate(compose(cache_dir, tmp_path, tiny(name), f"task={TASKS[kind]}"))
    for method in (m for m in ("adapter", "lora", "ia3") if _takes(name, m)):
        model = load_backbone(cfg.model, cfg.task, pad_token_id=0, seed=0)
        head = get_kind(kind).head(fam, model)
        head_params = sum(p.numel() for p in getattr(model, head).parameters())
        tuned = apply({"method": method}, model, family=name, task_kind=kind)
        trainable = [n for n, p in tuned.named_parameters() if p.requires_grad]
        assert any(head in n.split(".") for n in trainable), f"{name} {kind} {method}: {head} is frozen"
        assert parameter_report(tuned)["groups"]["head"]["trainable"] >= head_params


@pytest.mark.parametrize("name", NAMES)
def test_a_built_vocabulary_takes_its_rows_from_the_backbone(cache_dir, tmp_path, name):
    from tokentune.model.backbone import load_backbone
    from tokentune.vocab.induction import induce_embeddings

    cfg = validate(compose(cache_dir, tmp_path, tiny(name), "task=demo", "tokenizer=bpe8k"))
    dm = prepared(cfg)
    base, tok = dm.base_tokenizer, dm.tokenizer
    assert tok is not base and list(tok.model_input_names) == list(get_family(name).input_names)
    model = load_backbone(cfg.model, cfg.task, pad_token_id=base.pad_token_id, seed=cfg.seed)
    old = model.get_input_embeddings().weight.detach().clone()
    stats = induce_embeddings(model, base, tok, "fvt", seed=0)
    new = model.get_input_embeddings().weight.detach()
    assert new.shape == (len(tok), old.shape[1]) == (stats["new_size"], old.shape[1])
    # every new token has a source among the old rows: its role's, its own text's or its pieces'
    assert stats["random"] == 0 and stats["copied"] + stats["fvt"] > 0, stats
    for role in get_family(name).required_roles:  # the roles this family cannot do without
        assert getattr(base, role) is not None, f"{name}: the backbone's tokenizer has no {role}"
        torch.testing.assert_close(new[tok.convert_tokens_to_ids(getattr(tok, role))],
                                   old[base.convert_tokens_to_ids(getattr(base, role))], rtol=0, atol=0,
                                   msg=f"{name}: the new {role}'s row is not the old {role}'s")
    encoded = tok(["a fine film", "not good at all"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.eval()(**encoded, labels=torch.tensor([1, 0]))
    assert encoded["input_ids"].max() < len(tok) and torch.isfinite(out.loss)


def _examples(dm, family, n: int = 24) -> list[dict]:
    """Real tokenized demo rows. Where a real token pads (GPT-2's eos), one ends in the pad id (a
    decoder then pools the token before); a dedicated pad token never comes from text."""
    rows = [dm.splits["train"][i] for i in range(n)]
    if family.pad_with is not None:
        rows[3] = {**rows[3], "input_ids": torch.cat([rows[3]["input_ids"][:-1],
                                                      torch.tensor([dm.tokenizer.pad_token_id])])}
    return rows


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("name", [n for n in NAMES if FAMILIES[n].packed_head is not None])
def test_packed_batches_compute_what_padded_ones_do(cache_dir, tmp_path, name, attn):
    from tokentune.data.batching import collate
    from tokentune.data.packing import pack
    from tokentune.finetune.apply import apply
    from tokentune.model.backbone import load_backbone
    from tokentune.model.packed import packed_forward

    cfg = validate(compose(cache_dir, tmp_path, tiny(name), "task=demo", f"model.attn_implementation={attn}"))
    dm = prepared(cfg)
    fam, pad = get_family(name), dm.tokenizer.pad_token_id
    model = load_backbone(cfg.model, cfg.task, pad_token_id=pad, seed=0)
    model = apply({"method": "lora", "r": 4}, model, family=name, task_kind="classification").eval()
    rows = _examples(dm, fam)
    packed = pack(rows, pad_id=pad, budget=cfg.data.max_length, pool=fam.pool)
    assert packed["input_ids"].shape[0] < len(rows)  # several sequences share a row
    padded = collate(rows, pad_id=pad)

    def run(forward):
        model.zero_grad()
        out = forward()
        out.loss.backward()
        return out, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    got, got_grads = run(lambda: packed_forward(model, packed, family=name))
    want, want_grads = run(lambda: model(**padded))
    torch.testing.assert_close(got.logits, want.logits, rtol=1e-5, atol=1e-6)
    assert got.loss.item() == pytest.approx(want.loss.item(), rel=1e-5)
    assert got_grads.keys() == want_grads.keys() and len(got_grads) >= 4
    for k in want_grads:
        torch.testing.assert_close(got_grads[k], want_grads[k], rtol=1e-4, atol=1e-6, msg=k)


@pytest.mark.parametrize("name", NAMES)
def test_loads_in_the_dtype_asked_and_keeps_what_trains_in_float32(cache_dir, tmp_path, name):
    from tokentune.model.backbone import load_backbone

    cfg = validate(compose(cache_dir, tmp_path, tiny(name), "task=demo"))
    assert cfg.model.dtype == "float32"  # the default: fp32 master weights
    model = load_backbone(cfg.model, cfg.task, pad_token_id=0, seed=0)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    cfg = validate(compose(cache_dir, tmp_path, tiny(name), "task=demo", "model.dtype=bfloat16",
                           "trainer.precision=bf16-mixed", "finetune=lora"))
    model = load_backbone(cfg.model, cfg.task, pad_token_id=0, seed=0)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    # bf16-mixed: the frozen base stays bf16, what trains (LoRA, the head) is fp32 master weights
    dm = prepared(cfg)
    module = module_for(cfg, dm)
    module.configure_model()
    trained = {p.dtype for p in module.model.parameters() if p.requires_grad}
    frozen = {p.dtype for p in module.model.parameters() if not p.requires_grad}
    assert (trained, frozen) == ({torch.float32}, {torch.bfloat16})
    batch = collate_rows(dm)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module.model(**batch)
    out.loss.backward()
    assert torch.isfinite(out.loss)


def collate_rows(dm, n: int = 4) -> dict:
    from tokentune.data.batching import collate

    return collate([dm.splits["train"][i] for i in range(n)], pad_id=dm.tokenizer.pad_token_id)


def test_bfloat16_weights_need_a_bf16_precision(compose):
    with pytest.raises(ConfigError) as err:
        validate(compose("model=llama_tiny", "model.dtype=bfloat16"))
    assert str(err.value) == ("model.dtype: bfloat16 weights need trainer.precision=bf16-mixed (what "
                              "trains kept in float32) or bf16-true, not 32-true; or model.dtype=float32")
    with pytest.raises(ConfigError, match=r"^model.dtype: 'float16' is not one of \('float32', 'bfloat16'\)$"):
        validate(compose("model=llama_tiny", "model.dtype=float16"))
