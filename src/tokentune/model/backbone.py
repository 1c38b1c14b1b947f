"""Load the backbone through transformers' Auto classes, with the head the task kind names
(tokentune.task: *ForSequenceClassification, *ForCausalLM, ...). A random-init model's config
class is its family's model_type.
"""
from __future__ import annotations

from tokentune.config import ModelConfig, TaskConfig
from tokentune.errors import UserError
from tokentune.model.families import get_family
from tokentune.model.hub import from_hub


def model_config(model: ModelConfig):
    """The transformers config alone (no weights): enough to check limits before heavy work."""
    from transformers import AutoConfig

    if model.pretrained:
        config = from_hub(AutoConfig.from_pretrained, model.pretrained, "model.pretrained",
                          trust_remote_code=model.trust_remote_code)
        # model.config on a pretrained model: settings that replace the checkpoint's own (dropout,
        # ModernBERT's classifier_pooling), as from_pretrained(name, **kwargs) takes them; a name
        # the config class does not have would be stored and ignored, so it is refused
        for key, value in (model.config or {}).items():
            if not hasattr(config, key):
                raise UserError(f"model.config.{key}: {type(config).__name__} (of {model.pretrained}) "
                                f"has no setting '{key}'; see its config.json for the names")
            setattr(config, key, value)
        return config
    try:
        return AutoConfig.for_model(get_family(model.family).model_type, **model.config)
    except (TypeError, ValueError) as err:
        raise UserError(f"model.config: {err}") from None


def max_positions(config) -> int:
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions")


def load_backbone(model: ModelConfig, task: TaskConfig, *, pad_token_id: int, seed: int,
                  filled: bool = False):
    """The backbone with the task's head. `filled`: a checkpoint's weights are loaded over it
    next, so transformers' load report (a head "newly initialized ... consider training") would
    mislead and is not shown."""
    import contextlib

    import torch
    import transformers

    from tokentune.compat.transformers import load_report_hidden

    from tokentune.task import get_kind

    config = model_config(model)
    dtype = getattr(torch, model.dtype)  # model.dtype: float32 (the default) or bfloat16
    config.pad_token_id = pad_token_id
    kind = get_kind(task.kind)
    auto = getattr(transformers, kind.auto_class)
    kind.configure_head(config, task)
    if not model.pretrained:
        # seeded on its own: a PEFT checkpoint (trained weights only) must find the same frozen base
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return auto.from_config(config, attn_implementation=model.attn_implementation, dtype=dtype)
    # model.dtype whatever the file stores (e.g. an fp16 copy): float32 by default, master weights
    # that autocast computes from; bfloat16 for a large frozen base (TaskModule keeps what trains fp32)
    with load_report_hidden() if filled else contextlib.nullcontext():
        return from_hub(auto.from_pretrained, model.pretrained, "model.pretrained", config=config,
                        dtype=dtype, use_safetensors=True,
                        attn_implementation=model.attn_implementation,
                        trust_remote_code=model.trust_remote_code)
