"""Building peft's IA3 model for a family and task kind."""
from __future__ import annotations

import peft
from torch import nn

from tokentune.finetune.peft_model import get_peft_model
from tokentune.model.families import Family


def build_ia3(model: nn.Module, family: Family, kind) -> peft.PeftModel:
    # as for LoRA: every module the kind trains in full, its head included
    heads = list(kind.trained_heads(family, model))
    config = peft.IA3Config(
        task_type=getattr(peft.TaskType, kind.peft_task_type),
        target_modules=list(family.ia3_targets),
        feedforward_modules=list(family.ia3_feedforward),
        fan_in_fan_out=family.fan_in_fan_out,
        modules_to_save=heads or None,
    )
    return get_peft_model(model, config)
