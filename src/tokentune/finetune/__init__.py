"""Fine-tuning methods: full | adapter | lora | prefix.

Import-light: only the config schemas load here (they are needed while Hydra composes).
The entry point is `tokentune.finetune.apply.apply`; `report` and `checkpoint` hold the
parameter report and the trainable-only state dicts; these import torch.
"""
from tokentune.finetune.config import (
    SCHEMAS,
    AdapterConfig,
    FinetuneConfig,
    FullConfig,
    LoraConfig,
    PrefixConfig,
    parse_config,
)

__all__ = [
    "SCHEMAS",
    "AdapterConfig",
    "FinetuneConfig",
    "FullConfig",
    "LoraConfig",
    "PrefixConfig",
    "parse_config",
]
