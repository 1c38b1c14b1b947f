"""What a task kind is: everything that differs between classification, regression, causal LM,
token classification ..., asked of one object (`tokentune.task.get_kind(cfg.task.kind)`).

A kind owns its head (the transformers Auto class and how the config is set for it), how a
split is read and encoded (and cached), the model's inputs and labels, its metrics, what a
prediction is (a split's prediction file, a raw text's JSON line), what an export says about its
labels and how it loads in `pipeline()`, and the model card's task line. The rest of tokentune
calls these methods; no module outside `tokentune/task/` compares a kind's name.

This module and every kind's module are imported while Hydra composes (TaskConfig checks
itself through its kind): torch, transformers and the data code are imported inside methods.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # annotations only
    from tokentune.config import TaskConfig, TrainConfig
    from tokentune.model.families import Family


def examples_in(batch: dict) -> int:
    """Examples in a batch: one per label (a packed row holds several), else one per row."""
    return batch["labels"].shape[0] if "labels" in batch else batch["input_ids"].shape[0]


class TaskKind:
    name: str
    auto_class: str  # transformers' Auto class for the head, e.g. "AutoModelForSequenceClassification"
    peft_task_type: str  # peft.TaskType's name: which head peft trains in full (modules_to_save)
    pipeline_task: str  # transformers.pipeline's task for an exported folder
    head_names: tuple[str, ...] = ()  # what transformers calls the kind's own head, where the family's entry does not say
    configures_labels: bool = True  # the head is sized by num_labels (from_pretrained(num_labels=N))
    # None: data.packing works; else why it cannot (shown as the data.packing error)
    packing_refused: Optional[str] = None
    # True: a run writes the validation split's prediction file too (where the predictions are
    # what the official scorer reads, e.g. SQuAD's {id: answer} JSON)
    predicts_validation: bool = False

    # -- composition: the task group's own checks (no torch) -------------------------------
    def check_task(self, task: "TaskConfig") -> None:
        """Range checks of the task group that depend on the kind (labels, columns)."""

    def num_labels(self, task: "TaskConfig") -> int:
        return len(task.labels or [])

    def length_limit(self, cfg: "TrainConfig") -> tuple[str, int]:
        """The setting that bounds a sequence's tokens, and its value (checked against the model)."""
        return "data.max_length", cfg.data.max_length

    def supported_by(self, family: "Family") -> bool:
        return True

    def available_splits(self, task: "TaskConfig") -> set[str]:
        """The splits a checkpoint can be scored on or run over."""
        return set(task.splits)

    # -- data -------------------------------------------------------------------------------
    def read_splits(self, task: "TaskConfig") -> dict[str, Any]:
        """Every split's rows, checked (a bad row fails here, before a model is loaded)."""
        raise NotImplementedError

    def texts(self, raw: dict[str, Any]) -> dict[str, list[str]]:
        """The raw text of each split: the corpus a built vocabulary learns from, and what the
        vocabulary report counts."""
        raise NotImplementedError

    def example_texts(self, raw: dict[str, Any]) -> dict[str, list[str]]:
        """Per split, all the text of each example as one string: a blank one is an empty example
        (a split of them, or more than data.max_empty_share, is refused before anything is built)."""
        return self.texts(raw)

    def encode_splits(self, raw: dict[str, Any], tokenizer, cfg: "TrainConfig", key: str,
                      cache) -> dict[str, dict]:
        """Each split as flat tensors (tokentune.data.encode.EncodedSplit), read from or written
        to `cache` (tokentune.data.encode.TensorCache) under names that include `key`."""
        raise NotImplementedError

    def indices(self, raw: dict[str, Any]) -> dict[str, list]:
        """Per split, the row ids written back in a prediction file."""
        return {}

    def has_labels(self, tensors: dict) -> bool:
        return "labels" in tensors

    def fixed_widths(self, cfg: "TrainConfig") -> Optional[list[int]]:
        """The widths batches are padded to (data.buckets), or None: to their longest row."""
        return cfg.data.widths()

    # -- model ------------------------------------------------------------------------------
    def configure_head(self, config, task: "TaskConfig") -> None:
        """Set the transformers config for the head before the model is built."""

    def head(self, family: "Family", model) -> str:
        """The attribute of the Auto model that holds the head (checked on every model loaded)."""
        raise NotImplementedError

    def trained_heads(self, family: "Family", model) -> tuple[str, ...]:
        """Modules the PEFT methods train in full: the new head and what the checkpoint lacks."""
        return ()

    def model_inputs(self, batch: dict) -> dict:
        """The batch as the model's forward takes it (e.g. a causal LM's labels are its inputs)."""
        return batch

    def training_loss(self, loss, batch: dict, module):
        """The loss a training step backpropagates, from the model's own (e.g. rescaled so that
        data-parallel ranks together compute what one process would)."""
        return loss

    def loss_weight(self, batch: dict):
        """What a batch's mean loss averages over (the epoch's loss weighs each batch by it): its
        examples, by default."""
        return examples_in(batch)

    def build_metrics(self, task: "TaskConfig"):
        """A torchmetrics MetricCollection of task.metrics."""
        raise NotImplementedError

    def update_metrics(self, metrics, out, batch: dict) -> None:
        metrics.update(self.predictions(out.logits), batch["labels"])

    def bind_metrics(self, metrics, dm, split: str) -> None:
        """Hand the metrics what they need of the split besides the batches (called before they
        compute: e.g. a question-answering split's windows, character offsets and answers)."""

    def batch_predictions(self, task: "TaskConfig", out, batch: dict):
        """A predict batch's predictions, one row per example (a tensor, on the device)."""
        return self.predictions(out.logits)

    def predictions(self, logits):
        """What the model predicts, from its logits (on the device: no host sync)."""
        raise NotImplementedError

    def pipeline_kwargs(self, task: "TaskConfig") -> str:
        """Extra pipeline() arguments the model card shows (Python source, from ", ")."""
        return ""

    def load_example(self, cfg: "TrainConfig", folder: str) -> list[str]:
        """The Python lines the model card shows to load and use a full or LoRA export with
        transformers alone."""
        return ["from transformers import pipeline",
                f'pipeline("{self.pipeline_task}", model="{folder}"{self.pipeline_kwargs(cfg.task)})']

    def label_config(self, config, task: "TaskConfig") -> None:
        """What an exported config says about the labels (id2label ...)."""

    def data_report(self, tensors: dict[str, dict]) -> dict:
        """What encoding the splits found worth a line in results.json (e.g. words cut off)."""
        return {}

    # -- outputs ----------------------------------------------------------------------------
    def check_prediction_file(self, task: "TaskConfig") -> None:
        """Refuse, before any model is loaded, a split's predictions where the kind has none."""

    def prediction_file(self, task: "TaskConfig", dm, split: str, predictions: list) -> tuple[str, str]:
        """The file name and content of a split's predictions (GLUE's submission TSV ...)."""
        raise NotImplementedError

    def input_keys(self, task: "TaskConfig") -> list[str]:
        """The texts one raw-text example has (JSON keys; a .txt line's tab-separated fields)."""
        return list(task.text_columns)

    def split_line(self, line: str) -> list[str]:
        """A .txt input line as its texts."""
        return line.split("\t")

    def predict_text(self, cfg, train_cfg: "TrainConfig", dm, model, trainer,
                     examples: list[tuple[str, ...]]) -> list[dict]:
        """One JSON-able row per raw-text example (tokentune-predict text=...)."""
        raise NotImplementedError

    def card_task(self, task: "TaskConfig") -> str:
        """The model card's task line."""
        return f"{task.name} ({self.name})"
