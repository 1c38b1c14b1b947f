"""Full fine-tuning: every weight trains, and `model/` is a plain transformers folder."""
from __future__ import annotations

from tokentune.finetune.full.config import FullConfig
from tokentune.finetune.method import Method, pipeline_lines


class Full(Method):
    name = "full"
    schema = FullConfig
    whole_model_checkpoint = True
    transformers_folder = True

    def apply(self, cfg, model, family, kind, max_length):
        model.requires_grad_(True)
        return model

    def merged(self, model):
        return model

    def write_export(self, model, folder, export):
        export.plain().save_pretrained(folder)  # transformers 5 always writes safetensors

    def how_to_load(self, cfg, folder, kind):
        return pipeline_lines(folder, kind, cfg)

