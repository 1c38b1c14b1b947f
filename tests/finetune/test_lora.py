"""LoRA through peft: family defaults, merging, export, target checks."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import peft
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
from transformers.pytorch_utils import Conv1D

from tokentune.errors import ConfigError
from tokentune.finetune.apply import apply
from tokentune.finetune import get_method

from .models import SETUPS, batch


def _inputs(b: dict) -> dict:
    return {k: v for k, v in b.items() if k != "labels"}


def _lora_model(setup: str, **settings):
    family, task_kind, make = SETUPS[setup]
    model = apply({"method": "lora", "r": 4, **settings}, make(), family=family, task_kind=task_kind)
    # lora_B starts at zero, which would make merged == unmerged trivially true.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    return model.eval(), family, task_kind


@pytest.mark.parametrize(
    "setup, targets, layer_type",
    [("bert-cls", {"query", "value"}, torch.nn.Linear), ("gpt2-cls", {"c_attn"}, Conv1D), ("gpt2-lm", {"c_attn"}, Conv1D)],
)
def test_family_default_targets(setup, targets, layer_type):
    model, _, _ = _lora_model(setup)
    wrapped = {name.rpartition(".")[2]: m for name, m in model.named_modules() if isinstance(m, peft.tuners.lora.LoraLayer)}
    assert set(wrapped) == targets
    assert all(isinstance(m.get_base_layer(), layer_type) for m in wrapped.values())


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_merged_and_unmerged_give_the_same_logits(setup):
    model, family, task_kind = _lora_model(setup)
    b = _inputs(batch(family, task_kind))
    with torch.no_grad():
        unmerged = model(**b).logits
        base_only = model.get_base_model()
        with model.disable_adapter():
            without_lora = model(**b).logits
        merged_model = get_method("lora").merged(model)
        merged = merged_model(**b).logits
    assert not isinstance(merged_model, peft.PeftModel)
    assert not torch.allclose(unmerged, without_lora, atol=1e-4)  # the perturbed LoRA does something
    assert torch.allclose(merged, unmerged, atol=1e-5, rtol=1e-4)
    assert merged_model is base_only


@pytest.mark.parametrize("setup, auto", [("bert-cls", AutoModelForSequenceClassification), ("gpt2-lm", AutoModelForCausalLM)])
def test_a_merged_copy_saves_as_a_plain_transformers_folder(tmp_path, setup, auto):
    family, task_kind, make = SETUPS[setup]
    model = apply({"method": "lora", "r": 4}, make(), family=family, task_kind=task_kind, train_embeddings=True)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)  # as if trained: LoRA, head and embeddings moved
    model.eval()
    b = _inputs(batch(family, task_kind))
    with torch.no_grad():
        expected = model(**b).logits
    out = tmp_path / "merged"
    get_method("lora").merged(copy.deepcopy(model)).save_pretrained(out)
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert isinstance(model, peft.PeftModel) and any("lora_A" in n for n, _ in model.named_parameters())
    reloaded = auto.from_pretrained(out).eval()
    with torch.no_grad():
        got = reloaded(**b).logits
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4)
    if task_kind == "causal_lm":
        assert reloaded.lm_head.weight is reloaded.get_input_embeddings().weight


def test_bias_option_trains_biases():
    model, _, _ = _lora_model("bert-cls", bias="lora_only")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.endswith("query.base_layer.bias") for n in trainable)
    assert not any(n.endswith("key.bias") for n in trainable)


def test_unknown_target_module_lists_available_names():
    family, task_kind, make = SETUPS["bert-cls"]
    with pytest.raises(ConfigError) as info:
        apply({"method": "lora", "target_modules": ["query", "q_proj"]}, make(), family=family, task_kind=task_kind)
    message = str(info.value)
    assert message.startswith(
        "finetune.target_modules: 'q_proj' matches no Linear/Conv1D/Embedding module of this bert model; "
        "available names include: "
    )
    assert "query" in message and "value" in message and "dense" in message


def test_targeting_the_head_is_refused():
    family, task_kind, make = SETUPS["gpt2-cls"]
    with pytest.raises(ConfigError, match=r"'score' is the task head, which always trains in full"):
        apply({"method": "lora", "target_modules": ["score"]}, make(), family=family, task_kind=task_kind)


def test_rank_zero_is_refused_before_any_model_work():
    family, task_kind, make = SETUPS["bert-cls"]
    with pytest.raises(ConfigError, match=r"^finetune.r: LoRA rank must be a positive integer \(got 0\)"):
        apply({"method": "lora", "r": 0}, make(), family=family, task_kind=task_kind)


@pytest.mark.parametrize("settings, trainable", [
    ({}, 74_498),
    ({"use_dora": True}, 79_106),  # + a magnitude per output feature: 384 x 12 modules
    ({"use_rslora": True}, 74_498),
    ({"init": "gaussian"}, 74_498),
    ({"init": "orthogonal"}, 74_498),
])
def test_minilm_trainable_counts_are_peft_s_own(settings, trainable):
    from tokentune.finetune.report import parameter_report

    from .reference import minilm, peft_count

    report = parameter_report(apply({"method": "lora", **settings}, minilm(), family="bert", task_kind="classification"))
    init = {"default": True}.get(settings.get("init", "default"), settings.get("init"))
    want = peft_count(peft.LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=["query", "value"],
                                      use_dora=settings.get("use_dora", False),
                                      use_rslora=settings.get("use_rslora", False), init_lora_weights=init))
    assert report["trainable"] == want == trainable


def test_rslora_scales_by_the_root_of_the_rank():
    family, task_kind, make = SETUPS["bert-cls"]
    for rslora, scale in ((False, 16 / 4), (True, 16 / 2)):
        model = apply({"method": "lora", "r": 4, "alpha": 16, "use_rslora": rslora}, make(), family=family,
                      task_kind=task_kind)
        layer = model.base_model.model.bert.encoder.layer[0].attention.self.query
        assert layer.scaling["default"] == scale


def test_an_init_not_offered_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^finetune.init: 'pissa' is not one of \('default', 'gaussian'"):
        apply({"method": "lora", "init": "pissa"}, SETUPS["bert-cls"][2](), family="bert", task_kind="classification")
    with pytest.raises(ConfigError, match=r"^finetune.init: orthogonal initialisation needs an even finetune.r"):
        apply({"method": "lora", "init": "orthogonal", "r": 3}, SETUPS["bert-cls"][2](), family="bert",
              task_kind="classification")


OLD = Path(__file__).parent / "data" / "before_registry"  # LoRA checkpoints with trained deltas (|B| ~ 0.1)


def _restore_cfg(ckpt: Path, tmp_path: Path, **extra):
    from omegaconf import OmegaConf

    import tokentune

    return OmegaConf.create({"ckpt_path": str(ckpt), "data_dir": str(Path(tokentune.__file__).parent / "data" / "demo"),
                             "accelerator": "cpu", "paths": {"cache_dir": str(tmp_path / "cache"),
                                                             "output_dir": str(tmp_path / "out")}, **extra})


def _with_merge(ckpt: Path, merge: bool, folder: Path) -> Path:
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["hyper_parameters"]["cfg"]["finetune"]["merge_for_inference"] = merge
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, folder / ckpt.name)
    return folder / ckpt.name


@pytest.mark.parametrize("name", ["bert_tiny-lora", "gpt2_tiny-lora"])
def test_evaluate_and_predict_run_the_merged_weights_with_the_unmerged_logits(tmp_path, name):
    from tokentune.data.batching import collate
    from tokentune.run.restore import inference_weights, load_weights, restore

    ckpt = OLD / f"{name}.ckpt"
    cfg = _restore_cfg(ckpt, tmp_path)
    _, dm, module, trainer = restore(cfg)
    unmerged = load_weights(ckpt, module, trainer)
    rows = collate([dm.splits["validation"][i] for i in range(8)], pad_id=dm.tokenizer.pad_token_id)
    with torch.no_grad():
        want = unmerged(rows).logits
        with unmerged.model.disable_adapter():
            base = unmerged(rows).logits
    assert (want - base).abs().max() > 1e-2  # the deltas move the logits: merging them is no no-op

    _, _, module, trainer = restore(cfg)
    merged = inference_weights(ckpt, module, trainer)
    assert not isinstance(merged.model, peft.PeftModel) and not merged.model.training
    assert not any("lora_" in n for n, _ in merged.model.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(merged(rows).logits, want, rtol=0, atol=1e-5)

    kept = _with_merge(ckpt, False, tmp_path / "unmerged")  # finetune.merge_for_inference=false
    _, _, module, trainer = restore(_restore_cfg(kept, tmp_path))
    assert isinstance(inference_weights(kept, module, trainer).model, peft.PeftModel)


def test_evaluate_and_predict_go_through_the_merged_model(tmp_path, monkeypatch):
    """tokentune-evaluate's metrics and tokentune-predict's outputs (split and raw text) come from
    the merged model, and equal the unmerged model's."""
    from tokentune.run.evaluate import evaluate, predict

    lora = get_method("lora")
    ran: list[str] = []
    real = lora.for_inference

    def spy(cfg, model):
        out = real(cfg, model)
        ran.append(type(out).__name__)
        return out

    monkeypatch.setattr(lora, "for_inference", spy)
    outputs = {}
    for merge in (True, False):
        ckpt = _with_merge(OLD / "bert_tiny-lora.ckpt", merge, tmp_path / str(merge))
        run = tmp_path / f"run-{merge}"
        metrics = evaluate(_restore_cfg(ckpt, run, split="validation"))["metrics"]
        tsv = predict(_restore_cfg(ckpt, run, split="validation")).read_text()
        text = predict(_restore_cfg(ckpt, run, split=None, text="a gripping, funny film", batch_size=32,
                                    max_new_tokens=32)).read_text()
        outputs[merge] = metrics, tsv, text
    assert ran == ["BertForSequenceClassification"] * 3 + ["PeftModelForSequenceClassification"] * 3
    (metrics, tsv, text), (metrics_unmerged, tsv_unmerged, text_unmerged) = outputs[True], outputs[False]
    assert metrics == pytest.approx(metrics_unmerged, rel=0, abs=1e-5) and tsv == tsv_unmerged
    probabilities = [json.loads(t)["probabilities"] for t in (text, text_unmerged)]
    assert probabilities[0] == pytest.approx(probabilities[1], rel=0, abs=1e-5)
