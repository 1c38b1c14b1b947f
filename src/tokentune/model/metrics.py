"""The task's metrics as torchmetrics objects (accumulated per step, synced once per epoch)."""
from __future__ import annotations

from typing import Sequence


def build_metrics(names: Sequence[str], n: int):
    """A MetricCollection of `names` (task.metrics) over `n` classes (1 for a number)."""
    import torchmetrics as tm

    # validate_args=False: the argument checks read tensors back to the host at every update;
    # labels are checked when the rows are read, predictions come from an argmax over n classes
    fast = {"validate_args": False}
    make = {
        "accuracy": lambda: tm.Accuracy(task="multiclass", num_classes=n, **fast),
        "f1": lambda: (tm.F1Score(task="binary", **fast) if n == 2
                       else tm.F1Score(task="multiclass", num_classes=n, average="macro", **fast)),
        "mcc": lambda: tm.MatthewsCorrCoef(task="multiclass", num_classes=n, **fast),
        "pearson": lambda: tm.PearsonCorrCoef(),
        "spearman": lambda: tm.SpearmanCorrCoef(),
        "perplexity": lambda: tm.text.Perplexity(ignore_index=-100),
    }
    return tm.MetricCollection({name: make[name]() for name in names})


def higher_is_better(metric: str) -> bool:
    return metric not in ("loss", "perplexity")
