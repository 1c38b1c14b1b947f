"""The task's metrics as torchmetrics objects (accumulated per step, synced once per epoch)."""
from __future__ import annotations

from tokentune.config import TaskConfig


def build_metrics(task: TaskConfig):
    import torchmetrics as tm

    n = task.num_labels
    make = {
        "accuracy": lambda: tm.Accuracy(task="multiclass", num_classes=n),
        "f1": lambda: (tm.F1Score(task="binary") if n == 2
                       else tm.F1Score(task="multiclass", num_classes=n, average="macro")),
        "mcc": lambda: tm.MatthewsCorrCoef(task="multiclass", num_classes=n),
        "pearson": lambda: tm.PearsonCorrCoef(),
        "spearman": lambda: tm.SpearmanCorrCoef(),
        "perplexity": lambda: tm.text.Perplexity(ignore_index=-100),
    }
    return tm.MetricCollection({name: make[name]() for name in task.metrics})


def higher_is_better(metric: str) -> bool:
    return metric not in ("loss", "perplexity")
