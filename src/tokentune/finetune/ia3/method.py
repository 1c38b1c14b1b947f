"""IA3 through peft: its vectors fold into the base's weights, so `model/` holds the merged
weights and the adapter alone in peft's format under `model/adapter/`, as LoRA's."""
from __future__ import annotations

from tokentune.errors import ConfigError
from tokentune.finetune.ia3.config import Ia3Config
from tokentune.finetune.peft_method import MergeablePeftMethod


class Ia3(MergeablePeftMethod):
    name = "ia3"
    schema = Ia3Config

    def check_family(self, family):
        if not family.ia3_targets:
            raise ConfigError("finetune", f"peft's IA3 names no modules to rescale in {family.name} models "
                              "(ia3_targets in tokentune/model/families.py); use finetune=lora, adapter or full")

    def apply(self, cfg, model, family, kind, max_length):
        from tokentune.finetune.ia3.model import build_ia3

        return build_ia3(model, family, kind)

    def owns_parameter(self, parts):
        return any(p.startswith("ia3_") for p in parts)
