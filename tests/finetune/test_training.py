"""A few optimizer steps move exactly the intended parameters; everything frozen stays bit-equal."""
from __future__ import annotations

import pytest
import torch

from tokentune.errors import UserError
from tokentune.finetune.apply import apply

from .models import SETUPS, batch

METHODS = {
    "full": {"method": "full"},
    "adapter": {"method": "adapter", "placement": "houlsby", "bottleneck": 8},
    "lora": {"method": "lora", "r": 4, "dropout": 0.0},
    "prefix": {"method": "prefix", "num_virtual_tokens": 4},
    "prefix-mlp": {"method": "prefix", "num_virtual_tokens": 4, "prefix_projection": True, "encoder_hidden_size": 16},
}
# Name parts of the parameters each method adds; peft trains a copy of the head ("modules_to_save").
METHOD_MARK = {"adapter": ".adapter.", "lora": ".lora_", "prefix": "prompt_encoder.", "prefix-mlp": "prompt_encoder."}
HEAD = {"bert": "classifier", "gpt2": "score"}
EMBEDDINGS = {"bert": "word_embeddings.weight", "gpt2": "wte.weight"}


def _expected_trainable(name: str, method: str, family: str, task_kind: str, train_embeddings: bool) -> bool:
    if method == "full":
        return True
    if METHOD_MARK[method] in name:
        return True
    if name.endswith(EMBEDDINGS[family]):
        return train_embeddings
    is_head = task_kind != "causal_lm" and HEAD[family] in name.split(".")
    return is_head and "original_module" not in name


def _steps(model, family, task_kind, n=3):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.0)
    model.train()
    b = batch(family, task_kind)
    for _ in range(n):
        optimizer.zero_grad()
        model(**b).loss.backward()
        optimizer.step()


CASES = [
    (setup, method, train_embeddings)
    for setup in sorted(SETUPS)
    for method in METHODS
    for train_embeddings in (False, True)
    if not (method == "full" and train_embeddings)
]


@pytest.mark.parametrize("setup, method, train_embeddings", CASES)
def test_steps_move_trainable_and_keep_frozen_bit_equal(setup, method, train_embeddings):
    family, task_kind, make = SETUPS[setup]
    model = apply(METHODS[method], make(), family=family, task_kind=task_kind, train_embeddings=train_embeddings)
    params = dict(model.named_parameters())
    trainable = {n for n, p in params.items() if p.requires_grad}
    expected = {n for n in params if _expected_trainable(n, method, family, task_kind, train_embeddings)}
    assert trainable == expected

    before = {n: p.detach().clone() for n, p in params.items()}
    _steps(model, family, task_kind)
    unchanged_trainable = sorted(n for n in trainable if torch.equal(params[n], before[n]))
    changed_frozen = sorted(n for n in params if n not in trainable and not torch.equal(params[n], before[n]))
    assert unchanged_trainable == []
    assert changed_frozen == []
    if task_kind != "causal_lm":  # implied by the set equality above; stated because it is the contract
        assert any(HEAD[family] in n.split(".") for n in trainable)
    if train_embeddings or method == "full":
        name = next(n for n in params if n.endswith(EMBEDDINGS[family]))
        b = batch(family, task_kind)
        seen = b["input_ids"][b["attention_mask"] == 1].unique()
        moved_rows = (params[name] != before[name]).any(dim=1)
        assert moved_rows[seen].all()  # every row the batch used has learned


def test_unsupported_task_for_family_is_refused():
    with pytest.raises(UserError, match=r"task kind 'causal_lm' is not supported for bert models"):
        apply({"method": "lora"}, SETUPS["bert-cls"][2](), family="bert", task_kind="causal_lm")


def test_model_of_another_family_is_refused():
    with pytest.raises(UserError, match=r"expected a gpt2 model \(model_type 'gpt2'\), got 'bert'"):
        apply({"method": "lora"}, SETUPS["bert-cls"][2](), family="gpt2", task_kind="classification")


@pytest.mark.parametrize("setup", ["bert-cls", "gpt2-cls"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_regression_head_trains_with_float_targets(setup, method):
    family, _, make = SETUPS[setup]
    model = apply(METHODS[method], make(num_labels=1), family=family, task_kind="regression")
    b = batch(family, "classification")
    b["labels"] = torch.tensor([0.5, -1.0, 2.0, 0.0])
    head = next(p for n, p in model.named_parameters() if p.requires_grad and HEAD[family] in n.split("."))
    before = head.detach().clone()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    out = model(**b)
    assert out.logits.shape == (4, 1)
    expected = torch.nn.functional.mse_loss(out.logits.squeeze(-1), b["labels"])
    assert torch.allclose(out.loss, expected)
    out.loss.backward()
    optimizer.step()
    assert not torch.equal(head, before)
