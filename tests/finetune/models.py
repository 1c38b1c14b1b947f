"""Tiny random-init BERT and GPT-2 models, built deterministically."""
from __future__ import annotations

from typing import Callable

import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    PreTrainedModel,
)

PAD = 0  # GPT-2 classification finds each row's last real token through pad_token_id


def tiny_bert(vocab_size: int = 100, attn: str = "eager", num_labels: int = 2, seed: int = 0) -> PreTrainedModel:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=num_labels,
        pad_token_id=PAD,
        attn_implementation=attn,
    )
    return BertForSequenceClassification(config)


def _gpt2_config(vocab_size: int, attn: str, **extra) -> GPT2Config:
    return GPT2Config(
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=64,
        vocab_size=vocab_size,
        pad_token_id=PAD,
        bos_token_id=1,
        eos_token_id=1,
        attn_implementation=attn,
        **extra,
    )


def tiny_gpt2(vocab_size: int = 100, attn: str = "eager", num_labels: int = 2, seed: int = 0) -> PreTrainedModel:
    torch.manual_seed(seed)
    return GPT2ForSequenceClassification(_gpt2_config(vocab_size, attn, num_labels=num_labels))


def tiny_gpt2_lm(vocab_size: int = 100, attn: str = "eager", seed: int = 0) -> PreTrainedModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(_gpt2_config(vocab_size, attn))


# (family, task_kind, factory) for every model the fine-tuning methods must handle.
SETUPS: dict[str, tuple[str, str, Callable[..., PreTrainedModel]]] = {
    "bert-cls": ("bert", "classification", tiny_bert),
    "gpt2-cls": ("gpt2", "classification", tiny_gpt2),
    "gpt2-lm": ("gpt2", "causal_lm", tiny_gpt2_lm),
}


def batch(family: str, task_kind: str, *, vocab_size: int = 100, seed: int = 1) -> dict[str, torch.Tensor]:
    """A right-padded batch of 4 rows with labels, as the lead's collate produces it."""
    g = torch.Generator().manual_seed(seed)
    lengths = [9, 6, 4, 9]
    ids = torch.randint(2, vocab_size, (len(lengths), max(lengths)), generator=g)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    ids = ids.masked_fill(mask == 0, PAD)
    out = {"input_ids": ids, "attention_mask": mask}
    if family == "bert":
        out["token_type_ids"] = torch.zeros_like(ids)
    if task_kind == "causal_lm":
        out["labels"] = ids.masked_fill(mask == 0, -100)
    else:
        out["labels"] = torch.tensor([0, 1, 1, 0])
    return out
