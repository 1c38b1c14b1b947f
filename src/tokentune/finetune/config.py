"""Schemas of the `finetune` config group: one dataclass per method, each in its method's folder
(`tokentune/finetune/<method>/config.py`), found through the registry.

Imported while Hydra composes the config, so it stays free of torch/peft/transformers.
Each schema validates itself in `__post_init__`, which runs when the composed config is turned
into objects (`OmegaConf.to_object`) or when `parse_config` builds one from a plain mapping.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any

from tokentune.errors import ConfigError
from tokentune.finetune.adapter.config import ADAPTER_NON_LINEARITIES, ADAPTER_PLACEMENTS, AdapterConfig
from tokentune.finetune.full.config import FullConfig
from tokentune.finetune.lora.config import LORA_BIAS, LoraConfig
from tokentune.finetune.prefix.config import PrefixConfig
from tokentune.finetune.registry import METHODS, get_method

SCHEMAS: dict[str, type] = {name: method.schema for name, method in METHODS.items()}

__all__ = ["ADAPTER_NON_LINEARITIES", "ADAPTER_PLACEMENTS", "LORA_BIAS", "SCHEMAS", "AdapterConfig",
           "FullConfig", "LoraConfig", "PrefixConfig", "parse_config"]


def parse_config(cfg: Any):
    """A validated schema object from a schema object, a DictConfig or a plain mapping."""
    if isinstance(cfg, tuple(SCHEMAS.values())):
        return cfg
    from omegaconf import DictConfig, OmegaConf  # here, not at the top: schemas must load without it

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(cfg, dict):
        raise ConfigError("finetune", f"expected a mapping with a 'method' key (got {type(cfg).__name__})")
    values = dict(cfg)
    method = values.get("method")
    schema = get_method(method).schema
    known = {f.name for f in fields(schema)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"finetune.{unknown[0]}",
            f"not a setting of finetune={method}; its settings are {', '.join(sorted(known))}",
        )
    return schema(**values)
