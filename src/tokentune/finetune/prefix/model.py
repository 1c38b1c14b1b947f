"""Prefix tuning through peft.

peft feeds the prefix to every layer as a key/value cache and widens the attention mask by the
prefix length; the model then numbers the real tokens from `num_virtual_tokens` on, so the
prefix and the longest sequence must fit in the model's position table together.
"""
from __future__ import annotations

import peft
from torch import nn

from tokentune.errors import ConfigError
from tokentune.finetune.peft_model import get_peft_model
from tokentune.finetune.prefix.config import PrefixConfig


def max_positions(model_config) -> int:
    # GPT2Config maps max_position_embeddings onto n_positions.
    return int(model_config.max_position_embeddings)


def check_prefix_fits(cfg: PrefixConfig, model_config, max_length: int | None) -> None:
    positions = max_positions(model_config)
    n = cfg.num_virtual_tokens
    if max_length is None:
        if n >= positions:
            raise ConfigError(
                "finetune.num_virtual_tokens",
                f"{n} virtual tokens leave no room for text in the model's {positions} positions; "
                f"choose fewer than {positions}",
            )
        return
    if n + max_length > positions:
        raise ConfigError(
            "finetune.num_virtual_tokens",
            f"{n} virtual tokens + max length {max_length} = {n + max_length} positions, but the model has "
            f"{positions}; lower finetune.num_virtual_tokens to at most {max(positions - max_length, 0)} "
            f"or the task's max length to at most {max(positions - n, 0)}",
        )


def build_prefix(
    model: nn.Module, cfg: PrefixConfig, kind, max_length: int | None = None
) -> peft.PeftModel:
    check_prefix_fits(cfg, model.config, max_length)
    task_type = getattr(peft.TaskType, kind.peft_task_type)
    prefix = peft.PrefixTuningConfig(
        task_type=task_type,
        num_virtual_tokens=cfg.num_virtual_tokens,
        prefix_projection=cfg.prefix_projection,
        encoder_hidden_size=cfg.encoder_hidden_size,  # None: peft uses the model's hidden size
    )
    return get_peft_model(model, prefix)
