"""The LoRA schema (imported while Hydra composes: no torch)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tokentune.errors import check
from tokentune.finetune.method import check_lr

LORA_BIAS = ("none", "all", "lora_only")
# peft's init_lora_weights that leave the base weights as they are and need nothing but the model:
# "default" is peft's True (B = 0, so the adapted model starts as the base). Not offered: eva, corda
# and loftq need data or a quantisation pass first; pissa and olora move the adapter's initial
# share out of the base, and peft's conversion of such an adapter back to plain LoRA (for
# model/adapter/ on the unchanged base) fails on a model with a trained head (peft 0.21:
# KeyError on modules_to_save while loading the initial adapter)
LORA_INITS = ("default", "gaussian", "orthogonal")


@dataclass
class LoraConfig:
    """Low-rank adaptation through peft (Hu et al. 2021).

    `target_modules: null` takes the family's `lora_targets` (BERT query+value, GPT-2 c_attn).
    `use_dora`: weight-decomposed LoRA (Liu et al. 2024), a trained magnitude per output feature;
    `use_rslora`: the update scaled by alpha/sqrt(r) rather than alpha/r (Kalajdzievski 2023);
    `init`: one of LORA_INITS.
    `merge_for_inference`: tokentune-evaluate and tokentune-predict run the model with the LoRA
    deltas merged into the base weights (the same logits to float rounding, without the low-rank
    products); the exported model is always merged.
    """

    method: str = "lora"
    lr: float = 5e-4
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.1
    target_modules: Optional[list[str]] = None
    bias: str = "none"
    merge_for_inference: bool = True
    use_dora: bool = False
    use_rslora: bool = False
    init: str = "default"

    def __post_init__(self) -> None:
        check_lr(self.lr)
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
        check(self.init in LORA_INITS, "finetune.init", f"'{self.init}' is not one of {LORA_INITS}")
        check(self.init != "orthogonal" or self.r % 2 == 0, "finetune.init",
              f"orthogonal initialisation needs an even finetune.r (got {self.r})")

    def peft_init(self):
        """peft's init_lora_weights for `init`."""
        return True if self.init == "default" else self.init
