"""LoRA (and DoRA, rsLoRA, peft's initialisations) through peft: `model/` holds the merged
weights, and the adapter alone in peft's format under `model/adapter/`."""
from __future__ import annotations

from tokentune.finetune.lora.config import LoraConfig
from tokentune.finetune.peft_method import MergeablePeftMethod


class Lora(MergeablePeftMethod):
    name = "lora"
    schema = LoraConfig

    def apply(self, cfg, model, family, kind, max_length):
        from tokentune.finetune.lora.model import build_lora

        return build_lora(model, cfg, family, kind)

    def for_inference(self, cfg, model):
        # merged, each adapted layer is one matrix product again, not three
        return self.merged(model) if cfg.merge_for_inference else model

    def owns_parameter(self, parts):
        return any(p.startswith("lora_") for p in parts)  # lora_A, lora_B, DoRA's lora_magnitude_vector
