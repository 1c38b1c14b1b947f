"""Sentence-level kinds: one label (classification) or one number (regression) per text or pair.

The head is transformers' *ForSequenceClassification, which pools the family's token (BERT's
[CLS]; GPT-2's last non-padding token, found through pad_token_id). Rows come from TSV, CSV,
JSONL or the hub (tokentune.data.readers), are tokenized per split and cached.
"""
from __future__ import annotations

from typing import Any

from tokentune.errors import UserError, check
from tokentune.task.kind import TaskKind

FORMATS = ("tsv", "csv", "jsonl", "hub")


class SequenceKind(TaskKind):
    auto_class = "AutoModelForSequenceClassification"
    peft_task_type = "SEQ_CLS"
    pipeline_task = "text-classification"
    problem_type: str
    # what the kind scores: class scores on a predicted class, correlations on a predicted number
    # (a correlation of class ids fails in torchmetrics; an accuracy of numbers is always 0)
    metrics: tuple[str, ...]

    def check_task(self, task) -> None:
        check(task.label_column is not None, "task.label_column", "needs a label column")
        check(task.format in FORMATS, "task.format", f"'{task.format}' is not a format for sentence rows {FORMATS}")
        for m in task.metrics:
            check(m in self.metrics, "task.metrics", f"'{m}' is not a {self.name} metric {self.metrics}")

    # -- data -------------------------------------------------------------------------------
    def read_splits(self, task) -> dict[str, Any]:
        from tokentune.data.readers import read_split

        raw = {split: read_split(task, split) for split in task.splits}
        if task.validation_splits[0] not in raw:
            raise UserError(f"task.splits: task '{task.name}' needs a 'validation' split")
        return raw

    def texts(self, raw) -> dict[str, list[str]]:
        return {s: [e.text_a + (" " + e.text_b if e.text_b else "") for e in ex] for s, ex in raw.items()}

    def encode_splits(self, raw, tokenizer, cfg, key, cache) -> dict[str, dict]:
        from tokentune.data.encode import encode_examples, fingerprint

        tensors = {}
        for split, examples in raw.items():
            rows = [(e.text_a, e.text_b, e.label) for e in examples]
            tensors[split] = cache.get(f"{split}-{fingerprint(key, rows)}.pt", lambda: encode_examples(
                tokenizer, examples, cfg.data.max_length, split))
        return tensors

    def indices(self, raw) -> dict[str, list]:
        return {s: [e.index for e in ex] for s, ex in raw.items()}

    def parse_label(self, task, raw, where: str, *, hub: bool = False):
        """A row's label as the model's target; `hub`: a hub dataset's own encoding of it."""
        raise NotImplementedError

    # -- model ------------------------------------------------------------------------------
    def configure_head(self, config, task) -> None:
        config.num_labels = self.num_labels(task)
        config.problem_type = self.problem_type

    def head(self, family, model) -> str:
        return family.cls_head

    def trained_heads(self, family, model) -> tuple[str, ...]:
        return (family.cls_head, *family.head_extras)

    def build_metrics(self, task):
        from tokentune.model.metrics import build_metrics

        return build_metrics(task.metrics, self.num_labels(task))

    # -- outputs ----------------------------------------------------------------------------
    def prediction_file(self, task, dm, split, predictions) -> tuple[str, str]:
        rows = ["index\tprediction"]
        for i, (index, p) in enumerate(zip(dm.indices[split], predictions)):
            rows.append(f"{index if index is not None else i}\t{self.prediction_value(task, p)}")
        # SST2.tsv (test, or the split asked for); test_matched → MNLI-matched.tsv
        suffix = "-" + split[len("test_"):] if split.startswith("test_") else ""
        return f"{task.name.upper()}{suffix}.tsv", "\n".join(rows) + "\n"

    def prediction_value(self, task, prediction) -> str:
        raise NotImplementedError

    def predict_text(self, cfg, train_cfg, dm, model, trainer, examples) -> list[dict]:
        import torch
        from torch.utils.data import DataLoader

        from tokentune.data.encode import EncodedSplit, encode_examples
        from tokentune.data.readers import Example

        # the datamodule's encoding (truncation, special tokens, pairs) and eval collate (padding)
        encoded = EncodedSplit(encode_examples(
            dm.tokenizer, [Example(t[0], t[1] if len(t) > 1 else None, None, None) for t in examples],
            train_cfg.data.max_length, "text"))
        loader = DataLoader(encoded, batch_size=cfg.batch_size, shuffle=False,
                            collate_fn=dm.collate_fn(train=False))
        device, rows, done = trainer.strategy.root_device, [], 0
        with torch.no_grad():
            for batch in loader:
                with trainer.precision_plugin.predict_step_context():
                    logits = model({k: v.to(device) for k, v in batch.items()}).logits.float()
                for texts, out in zip(examples[done:], logits.cpu()):
                    rows.append({"text": texts[0] if len(texts) == 1 else list(texts),
                                 **self.text_prediction(train_cfg.task, out)})
                done += len(logits)
        return rows

    def text_prediction(self, task, logits) -> dict:
        """A raw text's prediction (the JSON line's fields) from its logits."""
        raise NotImplementedError

    def card_task(self, task) -> str:
        labels = f"; labels {', '.join(task.labels)}" if task.labels else ""
        return f"{task.name} ({self.name}{labels})"


class Classification(SequenceKind):
    name = "classification"
    problem_type = "single_label_classification"
    metrics = ("accuracy", "f1", "mcc")

    def check_task(self, task) -> None:
        super().check_task(task)
        check(bool(task.labels) and len(task.labels) >= 2, "task.labels",
              "a classification task needs a list of at least two labels")
        check(len(set(task.labels)) == len(task.labels), "task.labels", "labels must be unique")

    def parse_label(self, task, raw, where: str, *, hub: bool = False):
        if hub and isinstance(raw, int):  # the hub stores a class label as its index
            if not 0 <= raw < len(task.labels):
                raise UserError(f"{where}: label {raw} is outside task.labels {task.labels}")
            return raw
        key = str(raw).strip()
        if key not in task.labels:
            raise UserError(f"{where}: label '{key}' is not in task.labels {task.labels}")
        return task.labels.index(key)

    def predictions(self, logits):
        return logits.argmax(-1)

    def label_config(self, config, task) -> None:
        config.id2label = dict(enumerate(task.labels))
        config.label2id = {label: i for i, label in enumerate(task.labels)}

    def prediction_value(self, task, prediction) -> str:
        return task.labels[prediction]

    def text_prediction(self, task, logits) -> dict:
        return {"label": task.labels[int(logits.argmax())],
                "probabilities": dict(zip(task.labels, logits.softmax(-1).tolist()))}


class Regression(SequenceKind):
    name = "regression"
    problem_type = "regression"
    metrics = ("pearson", "spearman")

    def pipeline_kwargs(self, task) -> str:
        return ', function_to_apply="none"'

    def num_labels(self, task) -> int:
        return 1

    def parse_label(self, task, raw, where: str, *, hub: bool = False):
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise UserError(f"{where}: label '{raw}' is not a number (task.kind=regression)") from None

    def predictions(self, logits):
        return logits.squeeze(-1).float()

    def prediction_value(self, task, prediction) -> str:
        return f"{prediction:.6f}"

    def text_prediction(self, task, logits) -> dict:
        return {"value": logits.squeeze(-1).item()}
