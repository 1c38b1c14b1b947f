"""The bottleneck adapter schema (imported while Hydra composes: no torch)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tokentune.errors import check
from tokentune.finetune.method import check_lr

ADAPTER_PLACEMENTS = ("pfeiffer", "houlsby")
ADAPTER_NON_LINEARITIES = ("relu", "gelu", "swish", "tanh")


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
        check_lr(self.lr)
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
