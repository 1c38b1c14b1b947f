"""`apply`: turn a loaded transformers model into the one the chosen method trains."""
from __future__ import annotations

from typing import Any

from torch import nn

from tokentune.finetune.config import parse_config
from tokentune.finetune.families import check_model
from tokentune.finetune.registry import get_method
from tokentune.model.families import get_family
from tokentune.task import get_kind


def apply(
    cfg: Any,
    model: nn.Module,
    *,
    family: str,
    task_kind: str,
    train_embeddings: bool = False,
    max_length: int | None = None,
) -> nn.Module:
    """Set up `model` for fine-tuning with `cfg.method`; returns the module to train.

    The method (tokentune.finetune.method) decides what trains: under full fine-tuning every
    weight; under the PEFT methods its own weights and the task head (the kind's trained_heads: a
    new classifier, not a causal LM's tied output layer), the base frozen. With
    `train_embeddings` the input embedding matrix trains too (a new vocabulary's induced rows must
    learn; GPT-2's LM head is tied to it). `max_length` (the longest token sequence the data will
    feed) lets prefix tuning check that prefix and text fit the position table now rather than
    fail inside the first batch.
    """
    config = parse_config(cfg)
    fam = get_family(family)
    kind = get_kind(task_kind)
    method = get_method(config.method)
    method.check_family(fam)
    check_model(fam, kind, model)
    tuned = method.apply(config, model, fam, kind, max_length)
    if train_embeddings:
        # Trained in place rather than through peft's modules_to_save: no copy of a large
        # matrix, and GPT-2's tied LM head keeps sharing it (so merged exports stay tied).
        model.get_input_embeddings().weight.requires_grad_(True)
    return tuned
