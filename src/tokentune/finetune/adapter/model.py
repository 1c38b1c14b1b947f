"""Injecting bottleneck adapters into each transformer block, at the family's adapter sites.

pfeiffer: one adapter after the feed-forward sublayer; houlsby: one after attention and one
after the feed-forward sublayer. Each sits on the sublayer's output before the residual add.
"""
from __future__ import annotations

from torch import nn

from tokentune.errors import ConfigError, UserError
from tokentune.finetune.adapter.config import AdapterConfig
from tokentune.model.families import Family

from .layer import AdapterLayer, BottleneckAdapter


def bottleneck_size(cfg: AdapterConfig, hidden_size: int) -> int:
    if cfg.bottleneck is not None:
        if cfg.bottleneck > hidden_size:
            raise ConfigError(
                "finetune.bottleneck",
                f"{cfg.bottleneck} is larger than the model's hidden size {hidden_size}; "
                f"choose at most {hidden_size} (a bottleneck compresses), or set it to null "
                "and use finetune.reduction_factor",
            )
        return cfg.bottleneck
    size = hidden_size // cfg.reduction_factor
    if size < 1:
        raise ConfigError(
            "finetune.reduction_factor",
            f"{cfg.reduction_factor} leaves no bottleneck for hidden size {hidden_size}; "
            f"choose at most {hidden_size}",
        )
    return size


def adapter_sites(cfg: AdapterConfig, family: Family) -> tuple[str, ...]:
    if cfg.placement == "houlsby":
        return (family.attention_site, family.ffn_site)
    return (family.ffn_site,)


def inject_adapters(model: nn.Module, cfg: AdapterConfig, family: Family) -> list[str]:
    """Wrap each block's sublayer outputs with a fresh adapter; returns the wrapped module names.

    Freezing is the caller's job; the new adapters come out trainable.
    """
    hidden_size = model.config.hidden_size
    size = bottleneck_size(cfg, hidden_size)
    blocks = model.base_model.get_submodule(family.blocks)
    prefix = f"{model.base_model_prefix}.{family.blocks}" if model.base_model is not model else family.blocks
    targets = []  # (name, parent module, attribute): all checked before any is wrapped
    for index, block in enumerate(blocks):
        for site in adapter_sites(cfg, family):
            parent_path, _, attr = site.rpartition(".")
            name = f"{prefix}.{index}.{site}"
            try:
                parent = block.get_submodule(parent_path)
                current = getattr(parent, attr)
            except AttributeError:
                raise UserError(
                    f"cannot place an adapter at {name}: the model has no such module (the "
                    f"{family.name} family's adapter sites in tokentune/model/families.py do not fit it)"
                ) from None
            if isinstance(current, AdapterLayer):
                raise UserError(f"cannot place an adapter at {name}: an adapter is there already")
            targets.append((name, parent, attr))
    for _, parent, attr in targets:
        reference = next(parent.parameters())
        adapter = BottleneckAdapter(hidden_size, size, cfg.non_linearity)
        adapter.to(device=reference.device, dtype=reference.dtype)
        setattr(parent, attr, AdapterLayer(getattr(parent, attr), adapter))
    return [name for name, _, _ in targets]
