"""The one place tokentune calls `peft.get_peft_model`."""
from __future__ import annotations

import warnings

import peft
from torch import nn


def get_peft_model(model: nn.Module, config: peft.PeftConfig) -> peft.PeftModel:
    with warnings.catch_warnings():
        # peft 0.21 asks transformers 5 for the deprecated `is_gradient_checkpointing`; the
        # warning is about peft's code and gives a user nothing to act on.
        warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
        return peft.get_peft_model(model, config)
