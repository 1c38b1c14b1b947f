"""Fine-tuning methods (full, adapter, lora, prefix, ...): one registered object each.

`get_method(cfg.finetune.method)` answers everything that differs between them
(tokentune.finetune.method); the registry is tokentune.finetune.registry. Import-light: the
schemas and method objects load here (they are needed while Hydra composes). The entry point is
`tokentune.finetune.apply.apply`; `report` and `checkpoint` hold the parameter report and the
trainable-only state dicts; these import torch.
"""
from tokentune.finetune.config import (
    SCHEMAS,
    AdapterConfig,
    FullConfig,
    LoraConfig,
    PrefixConfig,
    parse_config,
)
from tokentune.finetune.registry import METHODS, get_method

__all__ = [
    "METHODS",
    "SCHEMAS",
    "AdapterConfig",
    "FullConfig",
    "LoraConfig",
    "PrefixConfig",
    "get_method",
    "parse_config",
]
