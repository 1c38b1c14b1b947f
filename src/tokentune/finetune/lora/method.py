"""LoRA (and DoRA, rsLoRA, peft's initialisations) through peft: `model/` holds the merged
weights, and the adapter alone in peft's format under `model/adapter/`."""
from __future__ import annotations

from tokentune.finetune.lora.config import BASE_CHANGING_INITS, LoraConfig
from tokentune.finetune.peft_method import MergeablePeftMethod


class Lora(MergeablePeftMethod):
    name = "lora"
    schema = LoraConfig

    def apply(self, cfg, model, family, kind, max_length):
        from tokentune.finetune.lora.model import build_lora

        return build_lora(model, cfg, family, kind)

    def owns_parameter(self, parts):
        return any(p.startswith("lora_") for p in parts)  # lora_A, lora_B, DoRA's lora_magnitude_vector

    def write_export(self, model, folder, export):
        if model.peft_config["default"].init_lora_weights not in BASE_CHANGING_INITS:
            return super().write_export(model, folder, export)
        import tempfile

        export.plain().save_pretrained(folder)
        # The run's base lacks the adapter's initial share (PiSSA, OLoRA): peft rewrites the
        # adapter as plain LoRA of twice the rank on the unchanged base, from the adapter as it
        # was initialised, which rebuilding the run gives again (SVD and QR take no random draws)
        with tempfile.TemporaryDirectory() as initial:
            export.untrained().save_pretrained(initial)
            model.save_pretrained(folder / "adapter", save_embedding_layers=not export.own_vocabulary,
                                  path_initial_model_for_weight_conversion=initial)
