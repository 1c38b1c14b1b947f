"""What a fine-tuning method is: everything that differs between full fine-tuning, LoRA, prefix
tuning, ..., asked of one object (`tokentune.finetune.get_method(cfg.finetune.method)`).

A method owns its schema (the `finetune` group's dataclass), what it refuses (a family, packing, a
quantised base), how it turns a loaded model of a family and task kind into the module to train,
which parameters it adds, what its checkpoints hold and how they are restored, what `model/` of a
finished run holds and how that folder loads back, and the model card's lines on loading it. The
rest of tokentune calls these methods; no module outside a method's own folder
(`tokentune/finetune/<method>/`) compares a method's name.

This module and every method's `config.py` and `method.py` are imported while Hydra composes
(TrainConfig checks itself through its method): torch, peft and transformers are imported inside
the hooks.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from tokentune.errors import UserError, check

if TYPE_CHECKING:  # annotations only
    from torch import nn

    from tokentune.config import TrainConfig
    from tokentune.model.families import Family
    from tokentune.task.kind import TaskKind


def check_lr(lr: float) -> None:
    """The one range check every method's schema makes."""
    check(math.isfinite(lr) and lr > 0, "finetune.lr", f"must be a finite, positive learning rate (got {lr})")


class Method:
    name: str  # finetune.method, and the name of conf/finetune/<name>.yaml
    schema: type  # the dataclass of the finetune group, stored as <name>_schema in Hydra's ConfigStore
    # True: the checkpoint is Lightning's whole state dict (every weight trains); False: only what
    # `checkpoint_state` returns, the frozen base being rebuilt from the config it stores
    whole_model_checkpoint: bool = False
    # True: peft puts virtual tokens before the text and widens a 2D attention mask by their number
    # itself, so the model gets the tokenizer's mask rather than the 4D one tokentune builds
    virtual_tokens: bool = False
    # True: the exported folder is a transformers model (the kind's Auto class loads it alone)
    transformers_folder: bool = False
    # None: data.packing works; else why it cannot (shown as the data.packing error)
    packing_refused: Optional[str] = None

    # -- composition: from the config alone, before any model is built ---------------------------
    def read_saved(self, saved: dict) -> dict:
        """The `finetune` settings of a config a run stored (checkpoint, export, config.yaml), as
        this schema reads them: a key added since that run is given the value that computes what
        the run computed."""
        return saved

    def check_family(self, family: "Family") -> None:
        """Refuse, in one line, a family the method cannot take (also asked by `apply`, so that
        evaluate and export of a hand-edited config refuse it too)."""

    # -- model ------------------------------------------------------------------------------------
    def apply(self, cfg: Any, model: "nn.Module", family: "Family", kind: "TaskKind",
              max_length: Optional[int]) -> "nn.Module":
        """The module to train: `model` (or a peft wrapper of it) with the method's weights and the
        kind's trained heads trainable and, for the PEFT methods, the rest frozen. `cfg` is the
        method's schema object; `max_length` is the longest token sequence the data will feed."""
        raise NotImplementedError

    def owns_parameter(self, parts: list[str]) -> bool:
        """Whether a parameter, by the parts of its dotted name, is one the method added (the
        parameter report's `method` group)."""
        return False

    def merged(self, model: "nn.Module") -> Optional["nn.Module"]:
        """`model` as a plain transformers model, the method's weights folded into the base's
        (destructive: pass a copy), or None where they cannot be folded."""
        return None

    def for_inference(self, cfg: Any, model: "nn.Module") -> "nn.Module":
        """The model tokentune-evaluate and tokentune-predict run, given the trained one: `model`
        itself, or a model with the same outputs that costs less per batch. `cfg` is the method's
        schema object."""
        return model

    # -- checkpoints ------------------------------------------------------------------------------
    def checkpoint_state(self, model: "nn.Module") -> dict:
        """What a checkpoint holds of `model` (unless whole_model_checkpoint), keyed by parameter name."""
        from tokentune.finetune.checkpoint import trainable_state_dict

        return trainable_state_dict(model)

    def restore_checkpoint_state(self, model: "nn.Module", state: dict) -> None:
        """Put `checkpoint_state`'s tensors back into a model `apply` rebuilt."""
        from tokentune.finetune.checkpoint import load_trainable_state_dict

        load_trainable_state_dict(model, state)

    # -- export: <run>/model ----------------------------------------------------------------------
    def write_export(self, model: "nn.Module", folder: Path, export: "Export") -> None:
        """Write the method's weights into `folder` (tokenizer and tokentune.json are the caller's)."""
        raise NotImplementedError

    def load_export(self, folder: Path, rebuild: Callable[[], "nn.Module"]) -> "nn.Module":
        """The model an exported folder holds (unless transformers_folder): `rebuild()` is the
        run's model as `apply` built it, untrained."""
        raise NotImplementedError

    def how_to_load(self, cfg: "TrainConfig", folder: str, kind: "TaskKind") -> list[str]:
        """The model card's lines (Markdown) on loading the exported folder."""
        return ["Trained with tokentune; the folder holds the trained weights only (the base model is "
                f"{cfg.model.pretrained or cfg.model.name}), which `tokentune.load_model` puts back on it:",
                "", "```python", "import tokentune", f'model = tokentune.load_model("{folder}")', "```"]


class Export:
    """What `write_export` may need beside the trained model."""

    def __init__(self, plain: Callable[[], "nn.Module"], own_vocabulary: bool):
        self.plain = plain  # `merged` on a copy of the model, the task's labels in its config
        # False: the run's vocabulary is not the backbone's, so its embeddings belong in the folder
        self.own_vocabulary = own_vocabulary


def pipeline_lines(folder: str, kind: "TaskKind", cfg: "TrainConfig") -> list[str]:
    """The card's lines for a folder transformers loads alone."""
    return ["Trained with tokentune; loads with transformers alone:", "", "```python",
            *kind.load_example(cfg, folder), "```"]


def check_unexpected(folder: Path, unexpected: list[str]) -> None:
    """An exported weight with no place in the rebuilt model: the folder is of another version."""
    if unexpected:
        raise UserError(f"{folder}: {len(unexpected)} exported weights fit no module of the rebuilt "
                        f"model (first: {unexpected[0]}); export it again with this tokentune version")
