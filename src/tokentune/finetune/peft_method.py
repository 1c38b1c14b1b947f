"""What the methods built on peft share: peft's own export format, and how it loads back."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from tokentune.finetune.method import Export, Method, check_unexpected, pipeline_lines

if TYPE_CHECKING:
    from torch import nn

    from tokentune.config import TrainConfig
    from tokentune.task.kind import TaskKind


class PeftMethod(Method):
    """`model/` is peft's format (adapter_config.json, adapter_model.safetensors), which both
    `PeftModel.from_pretrained(base, folder)` and `tokentune.load_model(folder)` load."""

    def write_export(self, model: "nn.Module", folder: Path, export: Export) -> None:
        # a new vocabulary's embeddings are plain weights to peft (trained in place, or trimmed
        # and frozen): it saves them only when told
        model.save_pretrained(folder, save_embedding_layers=not export.own_vocabulary)

    def load_export(self, folder: Path, rebuild: Callable[[], "nn.Module"]) -> "nn.Module":
        import peft
        from safetensors.torch import load_file

        model = rebuild()
        loaded = peft.set_peft_model_state_dict(model, load_file(folder / "adapter_model.safetensors"))
        # peft loads a prompt-learning method's table into its prompt encoder on its own, after the rest
        check_unexpected(folder, [k for k in loaded.unexpected_keys if k != "prompt_embeddings"])
        return model.eval()

    def how_to_load(self, cfg: "TrainConfig", folder: str, kind: "TaskKind") -> list[str]:
        auto = kind.auto_class
        labels = f", num_labels={cfg.task.num_labels}" if kind.configures_labels else ""
        return [*super().how_to_load(cfg, folder, kind),
                "", "or, in peft's own format, with peft alone:", "", "```python",
                "from peft import PeftModel", f"from transformers import {auto}, AutoTokenizer",
                f'tokenizer = AutoTokenizer.from_pretrained("{folder}")',
                f'base = {auto}.from_pretrained("{cfg.model.pretrained or "<base model>"}"{labels}, '
                "pad_token_id=tokenizer.pad_token_id)",
                # the run's own vocabulary has other rows than the base's: they are in the folder
                *(["base.resize_token_embeddings(len(tokenizer))"] if cfg.tokenizer.kind != "pretrained" else []),
                f'model = PeftModel.from_pretrained(base, "{folder}")', "```"]


class MergeablePeftMethod(PeftMethod):
    """A peft method whose weights fold into the base's (LoRA, IA3): `model/` is the merged
    transformers model, and the adapter alone in peft's format under `model/adapter/`."""

    transformers_folder = True

    def merged(self, model: "nn.Module") -> "nn.Module":
        import peft

        if not isinstance(model, peft.PeftModel):
            raise TypeError(f"merging expects a PeftModel, got {type(model).__name__}")
        return model.merge_and_unload()

    def write_export(self, model: "nn.Module", folder: Path, export: Export) -> None:
        export.plain().save_pretrained(folder)  # transformers 5 always writes safetensors
        super().write_export(model, folder / "adapter", export)

    def how_to_load(self, cfg: "TrainConfig", folder: str, kind: "TaskKind") -> list[str]:
        return pipeline_lines(folder, kind, cfg)
