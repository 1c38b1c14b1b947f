"""`apply`: turn a loaded transformers model into the one the chosen method trains."""
from __future__ import annotations

from typing import Any

from torch import nn

from tokentune.finetune.config import AdapterConfig, FullConfig, LoraConfig, PrefixConfig, parse_config
from tokentune.finetune.families import check_model
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

    full: every weight trains. adapter/lora/prefix: the base model is frozen except the task
    head (the kind's trained_heads: a new classifier, not a causal LM's tied output layer) and, with `train_embeddings`, the input embedding matrix
    (a new vocabulary's induced rows must learn; GPT-2's LM head is tied to it). lora and prefix
    return a peft PeftModel; adapter returns `model` with adapters injected in place.
    `max_length` (the longest token sequence the data will feed) lets prefix tuning check that
    prefix and text fit the position table now rather than fail inside the first batch.
    """
    config = parse_config(cfg)
    fam = get_family(family)
    kind = get_kind(task_kind)
    fam.check_method(config.method)
    check_model(fam, kind, model)

    if isinstance(config, FullConfig):
        model.requires_grad_(True)
        return model

    if isinstance(config, AdapterConfig):
        from tokentune.finetune.adapter import inject_adapters

        model.requires_grad_(False)
        inject_adapters(model, config, fam)
        for head in kind.trained_heads(fam, model):
            getattr(model, head).requires_grad_(True)
        tuned = model
    elif isinstance(config, LoraConfig):
        from tokentune.finetune.lora import build_lora

        tuned = build_lora(model, config, fam, kind)
    elif isinstance(config, PrefixConfig):
        from tokentune.finetune.prefix import build_prefix

        tuned = build_prefix(model, config, kind, max_length)
    else:  # parse_config only returns the four schemas
        raise AssertionError(type(config))

    if train_embeddings:
        # Trained in place rather than through peft's modules_to_save: no copy of a large
        # matrix, and GPT-2's tied LM head keeps sharing it (so merged exports stay tied).
        model.get_input_embeddings().weight.requires_grad_(True)
    return tuned
