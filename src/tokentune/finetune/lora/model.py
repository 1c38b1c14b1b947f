"""Building peft's LoRA model for a family and task kind."""
from __future__ import annotations

import peft
from torch import nn
from transformers.pytorch_utils import Conv1D

from tokentune.errors import ConfigError
from tokentune.finetune.peft_model import get_peft_model
from tokentune.finetune.lora.config import LoraConfig
from tokentune.model.families import Family
from tokentune.task.registry import HEAD_NAMES

# The layer types peft's LoRA can wrap; anything else is rejected by peft with a less useful message.
_LORA_LAYERS = (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d, Conv1D)


def _matches(module_name: str, target: str) -> bool:
    # peft's rule for a plain (non-regex) target: the full name or its dotted suffix.
    return module_name == target or module_name.endswith("." + target)


def check_target_modules(model: nn.Module, targets: list[str], family: Family) -> None:
    names = [name for name, module in model.named_modules() if isinstance(module, _LORA_LAYERS)]
    available = list(dict.fromkeys(name.rpartition(".")[2] for name in names))
    for target in targets:
        if target in HEAD_NAMES:
            raise ConfigError(
                "finetune.target_modules",
                f"{target!r} is the task head, which always trains in full; remove it from the list",
            )
        if not any(_matches(name, target) for name in names):
            shown = [a for a in available if a not in HEAD_NAMES]
            raise ConfigError(
                "finetune.target_modules",
                f"{target!r} matches no Linear/Conv1D/Embedding module of this {family.name} model; "
                f"available names include: {', '.join(shown[:12])}",
            )


def build_lora(model: nn.Module, cfg: LoraConfig, family: Family, kind) -> peft.PeftModel:
    targets = list(cfg.target_modules) if cfg.target_modules is not None else list(family.lora_targets)
    check_target_modules(model, targets, family)
    # Every module the kind trains in full goes into modules_to_save, its head included: peft's
    # task type adds only the names it knows (QUESTION_ANS: qa_outputs, not ModernBERT's classifier)
    heads = list(kind.trained_heads(family, model))
    lora = peft.LoraConfig(
        task_type=getattr(peft.TaskType, kind.peft_task_type),
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        bias=cfg.bias,
        fan_in_fan_out=family.fan_in_fan_out,
        modules_to_save=heads or None,
        use_dora=cfg.use_dora,
        use_rslora=cfg.use_rslora,
        init_lora_weights=cfg.peft_init(),
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as err:  # peft's own config checks; our check above catches the common case
        raise ConfigError("finetune", f"peft rejected the LoRA settings: {err}") from err

