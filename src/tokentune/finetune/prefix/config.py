"""The prefix-tuning schema (imported while Hydra composes: no torch)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tokentune.errors import check
from tokentune.finetune.method import check_lr


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
        check_lr(self.lr)
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
