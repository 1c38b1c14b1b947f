"""Schemas of the `finetune` config group: one dataclass per method.

Imported while Hydra composes the config, so it stays free of torch/peft/transformers.
Each schema validates itself in `__post_init__`, which runs when the composed config is turned
into objects (`OmegaConf.to_object`) or when `parse_config` builds one from a plain mapping.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Optional, Union

from tokentune.errors import ConfigError, check

ADAPTER_PLACEMENTS = ("pfeiffer", "houlsby")
ADAPTER_NON_LINEARITIES = ("relu", "gelu", "swish", "tanh")
LORA_BIAS = ("none", "all", "lora_only")


def _check_lr(lr: float) -> None:
    check(math.isfinite(lr) and lr > 0, "finetune.lr", f"must be a finite, positive learning rate (got {lr})")


@dataclass
class FullConfig:
    """Every weight trains."""

    method: str = "full"
    lr: float = 5e-5

    def __post_init__(self) -> None:
        _check_lr(self.lr)


@dataclass
class AdapterConfig:
    """Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2020).

    `bottleneck` wins over `reduction_factor` (bottleneck = hidden size // reduction_factor).
    """

    method: str = "adapter"
    lr: float = 5e-4
    placement: str = "pfeiffer"
    bottleneck: Optional[int] = None
    reduction_factor: int = 16
    non_linearity: str = "relu"

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        check(
            self.placement in ADAPTER_PLACEMENTS,
            "finetune.placement",
            f"must be one of {', '.join(ADAPTER_PLACEMENTS)} (got {self.placement!r})",
        )
        check(
            self.bottleneck is None or self.bottleneck >= 1,
            "finetune.bottleneck",
            f"must be a positive integer or null to use finetune.reduction_factor (got {self.bottleneck})",
        )
        check(
            self.reduction_factor >= 1,
            "finetune.reduction_factor",
            f"must be a positive integer (got {self.reduction_factor})",
        )
        check(
            self.non_linearity in ADAPTER_NON_LINEARITIES,
            "finetune.non_linearity",
            f"must be one of {', '.join(ADAPTER_NON_LINEARITIES)} (got {self.non_linearity!r})",
        )


@dataclass
class LoraConfig:
    """Low-rank adaptation through peft.

    `target_modules: null` takes the family's `lora_targets` (BERT query+value, GPT-2 c_attn).
    `merge_for_inference`: evaluate/predict on merged weights (the exported model is always merged).
    """

    method: str = "lora"
    lr: float = 5e-4
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.1
    target_modules: Optional[list[str]] = None
    bias: str = "none"
    merge_for_inference: bool = True

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        check(self.r >= 1, "finetune.r", f"LoRA rank must be a positive integer (got {self.r}); 8 or 16 is typical")
        check(self.alpha > 0, "finetune.alpha", f"must be positive (got {self.alpha})")
        check(0 <= self.dropout < 1, "finetune.dropout", f"must be in [0, 1) (got {self.dropout})")
        if self.target_modules is not None:
            targets = list(self.target_modules)
            check(
                len(targets) > 0 and all(isinstance(t, str) and t for t in targets),
                "finetune.target_modules",
                f"must be a non-empty list of module names, or null for the family default (got {targets})",
            )
        check(
            self.bias in LORA_BIAS,
            "finetune.bias",
            f"must be one of {', '.join(LORA_BIAS)} (got {self.bias!r})",
        )


@dataclass
class PrefixConfig:
    """Prefix tuning through peft (Li & Liang 2021).

    `prefix_projection` trains the prefix through an MLP of width `encoder_hidden_size`
    (null: the model's hidden size), as in the paper; off trains the prefix directly.
    """

    method: str = "prefix"
    lr: float = 5e-3
    num_virtual_tokens: int = 20
    prefix_projection: bool = False
    encoder_hidden_size: Optional[int] = None

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        check(
            self.num_virtual_tokens >= 1,
            "finetune.num_virtual_tokens",
            f"must be a positive integer (got {self.num_virtual_tokens})",
        )
        check(
            self.encoder_hidden_size is None or self.encoder_hidden_size >= 1,
            "finetune.encoder_hidden_size",
            f"must be a positive integer or null for the model's hidden size (got {self.encoder_hidden_size})",
        )


FinetuneConfig = Union[FullConfig, AdapterConfig, LoraConfig, PrefixConfig]

SCHEMAS: dict[str, type] = {
    "full": FullConfig,
    "adapter": AdapterConfig,
    "lora": LoraConfig,
    "prefix": PrefixConfig,
}


def parse_config(cfg: Any) -> FinetuneConfig:
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
    if method not in SCHEMAS:
        raise ConfigError("finetune.method", f"unknown method {method!r}; choose one of {', '.join(SCHEMAS)}")
    schema = SCHEMAS[method]
    known = {f.name for f in fields(schema)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"finetune.{unknown[0]}",
            f"not a setting of finetune={method}; its settings are {', '.join(sorted(known))}",
        )
    return schema(**values)
