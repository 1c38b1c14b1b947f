"""The full fine-tuning schema (imported while Hydra composes: no torch)."""
from __future__ import annotations

from dataclasses import dataclass

from tokentune.finetune.method import check_lr


@dataclass
class FullConfig:
    """Every weight trains."""

    method: str = "full"
    lr: float = 5e-5

    def __post_init__(self) -> None:
        check_lr(self.lr)
