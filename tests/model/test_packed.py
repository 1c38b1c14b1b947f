"""A packed batch gives the loss, logits and gradients of the same examples padded one per row."""
import random

import pytest
import torch

from tokentune.config import ModelConfig, TaskConfig
from tokentune.data.batching import collate
from tokentune.data.packing import pack
from tokentune.finetune.apply import apply
from tokentune.finetune.config import LoraConfig
from tokentune.model.backbone import load_backbone
from tokentune.model.packed import packed_forward

TINY = {"bert": {"vocab_size": 300, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                 "intermediate_size": 64, "max_position_embeddings": 64},
        "gpt2": {"vocab_size": 300, "n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64}}
PAD = 0


def model(family, kind, attn, lora=False):
    task = TaskConfig(name="t", kind=kind, splits={"train": {"path": "x"}},
                      labels=["a", "b", "c"] if kind == "classification" else None,
                      metrics=["accuracy"] if kind == "classification" else ["pearson"],
                      monitor="accuracy" if kind == "classification" else "pearson")
    m = load_backbone(ModelConfig(name="tiny", family=family, config=TINY[family], attn_implementation=attn),
                      task, pad_token_id=PAD, seed=0)
    if lora:
        m = apply(LoraConfig(r=4), m, family=family, task_kind=kind)
    return m.eval()  # no dropout: both layouts must compute the same function


def examples(kind, n=11, seed=0):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        length = rng.randint(2, 30)
        ids = torch.tensor([rng.randint(1, 299) for _ in range(length)])
        if i == 4:
            ids[-1] = PAD  # GPT-2 then pools the token before it
        label = torch.tensor(rng.randint(0, 2)) if kind == "classification" else torch.tensor(rng.random())
        out.append({"input_ids": ids, "token_type_ids": (torch.arange(length) >= length // 2).long(),
                    "labels": label})
    return out


def loss_logits_grads(m, batch, family, packed):
    m.zero_grad()
    out = packed_forward(m, batch, family=family) if packed else m(**batch)
    out.loss.backward()
    grads = {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}
    return out.loss.detach(), out.logits.detach(), grads


@pytest.mark.parametrize("family", ["bert", "gpt2"])
@pytest.mark.parametrize("kind,attn,lora", [
    ("classification", "sdpa", False), ("classification", "eager", False),
    ("regression", "sdpa", False), ("classification", "sdpa", True)])
def test_packed_equals_padded(family, kind, attn, lora):
    m = model(family, kind, attn, lora)
    feats = examples(kind)
    pool = "first" if family == "bert" else "last"
    packed = pack(feats, pad_id=PAD, budget=64, pool=pool, widths=[16, 32, 64])
    assert packed["input_ids"].shape[0] < len(feats)  # several sequences share rows
    loss_p, logits_p, grads_p = loss_logits_grads(m, packed, family, packed=True)
    loss_u, logits_u, grads_u = loss_logits_grads(m, collate(feats, pad_id=PAD), family, packed=False)
    assert loss_p.item() == pytest.approx(loss_u.item(), rel=1e-5)
    torch.testing.assert_close(logits_p, logits_u, rtol=1e-5, atol=1e-6)
    assert grads_p.keys() == grads_u.keys() and len(grads_p) > 4
    for name in grads_u:
        torch.testing.assert_close(grads_p[name], grads_u[name], rtol=1e-4, atol=1e-6, msg=name)
