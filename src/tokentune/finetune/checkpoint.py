"""Checkpoints that hold only what training changed.

For adapter/lora/prefix runs the frozen base is rebuilt from the pretrained weights and the
config, so a checkpoint needs only the trainable tensors.
"""
from __future__ import annotations

import torch
from torch import nn

from tokentune.errors import UserError


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Detached views of the parameters with requires_grad, keyed as `named_parameters` names them."""
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


def load_trainable_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Copy `state_dict` into `model`'s trainable parameters; every key and shape must match.

    The model must have been built the same way (same base, method and settings) as the one
    that was saved, otherwise the names differ and this says which.
    """
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    missing = sorted(set(params) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(params))
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing from the checkpoint: {_listing(missing)}")
        if unexpected:
            problems.append(f"not trainable in this model: {_listing(unexpected)}")
        raise UserError(
            "the checkpoint's trainable weights do not match this model ("
            + "; ".join(problems)
            + "); rebuild the model with the finetune settings the checkpoint was trained with"
        )
    wrong = [
        f"{name} {tuple(state_dict[name].shape)} vs {tuple(p.shape)}"
        for name, p in params.items()
        if state_dict[name].shape != p.shape
    ]
    if wrong:
        raise UserError(
            f"the checkpoint's trainable weights have other shapes than this model's: {_listing(wrong)}; "
            "rebuild the model with the finetune settings (and vocabulary) the checkpoint was trained with"
        )
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(state_dict[name])
