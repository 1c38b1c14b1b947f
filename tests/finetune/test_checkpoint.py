"""Trainable-only checkpoints: small, and enough to rebuild the trained model exactly."""
from __future__ import annotations

import copy
import io

import pytest
import torch

from tokentune.errors import UserError
from tokentune.finetune.apply import apply
from tokentune.finetune.checkpoint import load_trainable_state_dict, trainable_state_dict

from .models import SETUPS, batch

PEFT_METHODS = {
    "adapter": {"method": "adapter", "bottleneck": 8},
    "lora": {"method": "lora", "r": 4},
    "prefix": {"method": "prefix", "num_virtual_tokens": 4},
    "ia3": {"method": "ia3"},
    "dora": {"method": "lora", "r": 4, "use_dora": True},
}


def _train(model, family, task_kind):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(2):
        optimizer.zero_grad()
        model(**batch(family, task_kind)).loss.backward()
        optimizer.step()
    return model.eval()


def _roundtrip(sd: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(sd, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("method", sorted(PEFT_METHODS))
@pytest.mark.parametrize("setup", ["bert-cls", "gpt2-lm"])
def test_trainable_state_dict_is_small_and_rebuilds_the_model_exactly(setup, method):
    family, task_kind, make = SETUPS[setup]
    pretrained = make(vocab_size=1000)  # stands in for from_pretrained: the frozen base is rebuilt from it
    model = apply(PEFT_METHODS[method], copy.deepcopy(pretrained), family=family, task_kind=task_kind)
    _train(model, family, task_kind)
    sd = _roundtrip(trainable_state_dict(model))

    full_size = sum(t.numel() for t in pretrained.state_dict().values())
    assert sum(t.numel() for t in sd.values()) < 0.1 * full_size

    torch.manual_seed(1234)  # fresh method weights differ from the trained ones until loaded
    fresh = apply(PEFT_METHODS[method], copy.deepcopy(pretrained), family=family, task_kind=task_kind).eval()
    inputs = {k: v for k, v in batch(family, task_kind, vocab_size=1000).items() if k != "labels"}
    with torch.no_grad():
        expected = model(**inputs).logits
        assert not torch.equal(fresh(**inputs).logits, expected)
        load_trainable_state_dict(fresh, sd)
        assert torch.equal(fresh(**inputs).logits, expected)


def test_embeddings_are_in_the_checkpoint_when_they_train():
    family, task_kind, make = SETUPS["gpt2-lm"]
    model = apply({"method": "lora"}, make(), family=family, task_kind=task_kind, train_embeddings=True)
    names = set(trainable_state_dict(model))
    assert "base_model.model.transformer.wte.weight" in names
    assert not any("lm_head" in n for n in names)  # tied to wte: stored once


def test_checkpoint_of_another_method_is_refused_with_the_names():
    family, task_kind, make = SETUPS["bert-cls"]
    lora = apply({"method": "lora"}, make(), family=family, task_kind=task_kind)
    adapter = apply({"method": "adapter"}, make(), family=family, task_kind=task_kind)
    with pytest.raises(UserError) as info:
        load_trainable_state_dict(adapter, trainable_state_dict(lora))
    message = str(info.value)
    assert message.startswith("the checkpoint's trainable weights do not match this model (missing from the checkpoint: ")
    assert "bert.encoder.layer.0.output.dropout.adapter.down.bias" in message
    assert "not trainable in this model: base_model.model.bert.encoder.layer.0.attention.self.query.lora_A" in message
    assert message.endswith("rebuild the model with the finetune settings the checkpoint was trained with")


def test_checkpoint_with_other_shapes_is_refused():
    family, task_kind, make = SETUPS["gpt2-cls"]
    r8 = apply({"method": "lora", "r": 8}, make(), family=family, task_kind=task_kind)
    r4 = apply({"method": "lora", "r": 4}, make(), family=family, task_kind=task_kind)
    before = {n: t.clone() for n, t in trainable_state_dict(r4).items()}
    with pytest.raises(UserError, match=r"other shapes than this model's: .*lora_A\.default\.weight \(8, 32\) vs \(4, 32\)"):
        load_trainable_state_dict(r4, trainable_state_dict(r8))
    assert all(torch.equal(t, before[n]) for n, t in trainable_state_dict(r4).items())  # nothing half-loaded
