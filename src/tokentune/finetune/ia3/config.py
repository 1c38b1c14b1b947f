"""The IA3 schema (imported while Hydra composes: no torch)."""
from __future__ import annotations

from dataclasses import dataclass

from tokentune.finetune.method import check_lr


@dataclass
class Ia3Config:
    """IA3 through peft (Liu et al. 2022): learned vectors that rescale the attention keys and
    values and the feed-forward activations, at the family's `ia3_targets`."""

    method: str = "ia3"
    lr: float = 1e-2

    def __post_init__(self) -> None:
        check_lr(self.lr)
