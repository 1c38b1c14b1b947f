"""The bottleneck adapter schema (imported while Hydra composes: no torch)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tokentune.errors import check
from tokentune.finetune.method import check_lr

# each placement's original_ln_before when that is null: AdapterHub's SeqBnConfig (pfeiffer) and
# DoubleSeqBnConfig (houlsby)
PLACEMENT_LN_BEFORE = {"pfeiffer": True, "houlsby": False}
ADAPTER_PLACEMENTS = tuple(PLACEMENT_LN_BEFORE)
ADAPTER_NON_LINEARITIES = ("relu", "gelu", "swish", "tanh")


@dataclass
class AdapterConfig:
    """Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2020).

    `bottleneck` wins over `reduction_factor` (bottleneck = hidden size // reduction_factor).

    `original_ln_before`, as AdapterHub's (with its residual_before_ln): true, each adapter reads its
    sublayer's output after the block's residual add and layer norm (a pre-norm block's: after the
    add), its update is added to the sublayer's output, and the block's add and norm follow as
    before; false, it reads the sublayer's output itself. Null: the placement's (pfeiffer true,
    houlsby false). A config saved before the key existed reads false (`Adapter.read_saved`).
    """

    method: str = "adapter"
    lr: float = 5e-4
    placement: str = "pfeiffer"
    bottleneck: Optional[int] = None
    reduction_factor: int = 16
    non_linearity: str = "relu"
    original_ln_before: Optional[bool] = None

    @property
    def ln_before(self) -> bool:
        """original_ln_before, resolved."""
        if self.original_ln_before is None:
            return PLACEMENT_LN_BEFORE[self.placement]
        return self.original_ln_before

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
