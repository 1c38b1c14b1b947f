"""The one place tokentune builds a peft model."""
from __future__ import annotations

import warnings

import peft
from torch import nn


def get_peft_model(
    model: nn.Module, config: peft.PeftConfig, peft_class: type[peft.PeftModel] | None = None
) -> peft.PeftModel:
    """`peft.get_peft_model`, or `peft_class(model, config)` where peft's class for the task needs a fix."""
    with warnings.catch_warnings():
        # peft 0.21 asks transformers 5 for the deprecated `is_gradient_checkpointing`; the
        # warning is about peft's code and gives a user nothing to act on.
        warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
        if peft_class is None:
            return peft.get_peft_model(model, config)
        return peft_class(model, config)
