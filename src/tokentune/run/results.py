"""results.json: what a run achieved (`RunResults`, the one definition that fit writes and every
reader loads), written atomically, plus a one-screen summary.

Import-light (the standard library and tokentune.atomic): the GPU node's summarizer reads these
files before anything else is known to work there.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tokentune.atomic import write_json

Metrics = dict[str, Optional[float]]  # "val/accuracy" → value; null where it was not finite


class NotRunResults(ValueError):
    """A JSON object that is not a finished run's results.json (message: what it lacks)."""


@dataclass
class RunResults:
    """Every key of results.json. The fields without a default are in every file a finished run
    ever wrote; the others came later, and a file written before them reads as the default."""

    run_dir: str
    task: str  # task.name
    model: str  # model.name
    finetune: str  # finetune.method
    tokenizer: str  # tokenizer.name
    seed: int
    validation: Metrics  # the best checkpoint's, every validation split's stage ("val/", "val_matched/")
    test: Metrics  # {} where no test split has labels (or test=false)
    best_checkpoint: Optional[str]
    checkpoint_mb: Optional[float]
    epochs: int
    steps: int
    parameters: dict[str, Any]  # tokentune.finetune.report.parameter_report
    vocabulary: dict[str, int]  # vocab_size, embedding_params
    induction: Optional[dict[str, Any]]  # the new embedding rows' sources; None with the backbone's vocabulary
    wall_time_s: float  # the sum of wall_time_parts_s
    test_predictions: dict[str, str] = field(default_factory=dict)  # unlabelled test split → prediction file
    validation_predictions: Optional[str] = None  # a kind that predicts validation (extractive QA): its file
    data: dict[str, Any] = field(default_factory=dict)  # the task kind's data_report
    model_dir: Optional[str] = None  # the exported model/ folder
    model_mb: Optional[float] = None
    resume_changes: dict[str, list] = field(default_factory=dict)  # key → [checkpoint's, this run's]
    # each command's part, in order: an interrupted fit's up to the checkpoint the next one resumed
    # from (what it did after that is done again), then the last; one part when never interrupted
    wall_time_parts_s: list[float] = field(default_factory=list)
    # where a number above is null: its path → "nan" / "inf" / "-inf" (tokentune.atomic.json_text)
    non_finite: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Any) -> "RunResults":
        """From results.json's object; NotRunResults if a key every run writes is missing."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if not isinstance(obj, dict):
            raise NotRunResults(f"is a JSON {type(obj).__name__}, not an object")
        missing = [name for name, f in fields.items() if name not in obj
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise NotRunResults(f"lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in obj.items() if k in fields})

    @classmethod
    def load(cls, path: Path) -> "RunResults":
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_json(self) -> dict[str, Any]:
        """The object results.json holds (non_finite is json_text's to add, where a number is)."""
        obj = dataclasses.asdict(self)
        if not obj["non_finite"]:
            del obj["non_finite"]
        return dict(sorted(obj.items()))  # the file's order (it is written with sorted keys)

    def write(self, path: Path) -> None:
        write_json_atomic(self.to_json(), path)


def write_json_atomic(obj, path: Path) -> None:
    """Strict JSON: a non-finite metric is null, with "nan"/"inf" beside it under "non_finite"."""
    write_json(path, obj, indent=2, sort_keys=True, default=float)


def metrics_to_floats(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


def summary(results: RunResults) -> str:
    lines = [f"run: {results.run_dir}",
             f"task={results.task} model={results.model} finetune={results.finetune} "
             f"tokenizer={results.tokenizer}"]
    for split in ("validation", "test"):
        if getattr(results, split):
            shown = ", ".join(f"{k.split('/', 1)[1]}={v:.4f}" if v is not None else f"{k.split('/', 1)[1]}=null"
                              for k, v in sorted(getattr(results, split).items()))
            lines.append(f"{split}: {shown}")
    p = results.parameters
    lines.append(f"parameters: {p['trainable']:,} trainable of {p['total']:,}; "
                 f"wall time {results.wall_time_s:.1f} s")
    return "\n".join(lines)
