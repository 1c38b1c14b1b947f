"""Bottleneck adapters: `model/` holds the trained weights as `bottleneck_adapter.safetensors`,
under the names they have in the adapted model, which `tokentune.load_model` rebuilds."""
from __future__ import annotations

from tokentune.finetune.adapter.config import AdapterConfig
from tokentune.finetune.method import Method, check_unexpected

WEIGHTS = "bottleneck_adapter.safetensors"


class Adapter(Method):
    name = "adapter"
    schema = AdapterConfig

    def read_saved(self, saved):
        # before original_ln_before (issue 28), every adapter read its sublayer's output
        return {"original_ln_before": False, **saved}

    def apply(self, cfg, model, family, kind, max_length):
        from tokentune.finetune.adapter.model import inject_adapters

        model.requires_grad_(False)
        inject_adapters(model, cfg, family)
        for head in kind.trained_heads(family, model):
            getattr(model, head).requires_grad_(True)
        return model

    def owns_parameter(self, parts):
        return "adapter" in parts

    def write_export(self, model, folder, export):
        from safetensors.torch import save_file

        # what the run changed: the trained weights (adapters, head), and the input embeddings when
        # the vocabulary is not the backbone's own (trimmed rows train frozen)
        embeddings = model.get_input_embeddings().weight
        save_file({name: p.detach().cpu().contiguous() for name, p in model.named_parameters()
                   if p.requires_grad or (p is embeddings and not export.own_vocabulary)}, folder / WEIGHTS)

    def load_export(self, folder, rebuild):
        from safetensors.torch import load_file

        model = rebuild()
        # missing keys are the frozen base's; an unexpected one has no place in the rebuilt model
        check_unexpected(folder, model.load_state_dict(load_file(folder / WEIGHTS), strict=False).unexpected_keys)
        return model.eval()
