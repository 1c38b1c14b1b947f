"""Injecting bottleneck adapters into each transformer block, at the family's adapter sites.

pfeiffer: one adapter after the feed-forward sublayer; houlsby: one after attention and one
after the feed-forward sublayer. Each adds its update to the sublayer's output before the residual
add, reading that output or (original_ln_before) the stream after the add and norm.
"""
from __future__ import annotations

from torch import nn

from tokentune.errors import ConfigError, UserError
from tokentune.finetune.adapter.config import AdapterConfig
from tokentune.model.families import Family, ResidualAdd

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


def adapter_sites(cfg: AdapterConfig, family: Family) -> tuple[tuple[str, ResidualAdd], ...]:
    if cfg.placement == "houlsby":
        return ((family.attention_site, family.attention_add), (family.ffn_site, family.ffn_add))
    return ((family.ffn_site, family.ffn_add),)


def inject_adapters(model: nn.Module, cfg: AdapterConfig, family: Family) -> list[str]:
    """Wrap each block's sublayer outputs with a fresh adapter; returns the wrapped module names.

    Freezing is the caller's job; the new adapters come out trainable.
    """
    hidden_size = model.config.hidden_size
    size = bottleneck_size(cfg, hidden_size)
    blocks = model.base_model.get_submodule(family.blocks)
    prefix = f"{model.base_model_prefix}.{family.blocks}" if model.base_model is not model else family.blocks
    # (name, parent module, attribute, add, residual module, norm): all checked before any is wrapped
    targets = []
    for index, block in enumerate(blocks):
        for site, add in adapter_sites(cfg, family):
            parent_path, _, attr = site.rpartition(".")
            name = f"{prefix}.{index}.{site}"
            try:
                parent = block.get_submodule(parent_path)
                current = getattr(parent, attr)
                residual = block.get_submodule(add.module) if cfg.ln_before else None
                norm = block.get_submodule(add.norm) if cfg.ln_before and add.norm else None
            except AttributeError:
                raise UserError(
                    f"cannot place an adapter at {name}: the model has no such module (the "
                    f"{family.name} family's adapter sites in tokentune/model/families.py do not fit it)"
                ) from None
            if isinstance(current, AdapterLayer):
                raise UserError(f"cannot place an adapter at {name}: an adapter is there already")
            targets.append((name, parent, attr, add, residual, norm))
    for _, parent, attr, add, residual, norm in targets:
        reference = next(parent.parameters())
        adapter = BottleneckAdapter(hidden_size, size, cfg.non_linearity)
        adapter.to(device=reference.device, dtype=reference.dtype)
        if residual is None:
            layer = AdapterLayer(getattr(parent, attr), adapter)
        else:
            layer = AdapterLayer(getattr(parent, attr), adapter, add.arg, norm)
            residual.register_forward_pre_hook(layer.keep_residual)
        setattr(parent, attr, layer)
    return [name for name, *_ in targets]
