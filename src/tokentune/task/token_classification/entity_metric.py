"""Entity scores as a torchmetrics Metric: predicted and true tag ids gathered on the device
during evaluation (no host sync per batch), turned into tags and scored once per epoch by
metrics.entity_scores (seqeval)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torchmetrics
from torchmetrics.utilities import dim_zero_cat

from tokentune.task.token_classification.metrics import entity_scores
from tokentune.task.token_classification.tags import to_iob2

IGNORE = -100


class EntityMetric(torchmetrics.Metric):
    """Over the words of every sentence scored (positions whose target is not IGNORE): the
    `names` of metrics.entity_scores (f1, precision, recall, accuracy), and with f1 the F1 of
    each entity type as f1_<TYPE>."""

    full_state_update = False

    def __init__(self, labels: Sequence[str], scheme: str, names: Sequence[str]):
        super().__init__()
        self.labels, self.scheme, self.names = list(labels), scheme, tuple(names)
        # rows of different widths, flattened; a row's width says where it ends
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("widths", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.preds.append(preds.flatten())
        self.target.append(target.flatten())
        self.widths.append(torch.full((target.shape[0],), target.shape[1], device=target.device))

    def compute(self) -> dict[str, torch.Tensor]:
        preds, target = dim_zero_cat(self.preds).tolist(), dim_zero_cat(self.target).tolist()
        true_tags, pred_tags, start = [], [], 0
        for width in dim_zero_cat(self.widths).tolist():
            row = [(t, p) for t, p in zip(target[start:start + width], preds[start:start + width]) if t != IGNORE]
            true_tags.append([self.labels[t] for t, _ in row])
            pred_tags.append([self.labels[p] for _, p in row])
            start += width
        scores = entity_scores(true_tags, pred_tags, self.scheme)
        out = {name: torch.tensor(scores[name]) for name in self.names}
        if "f1" in self.names:
            out.update({f"f1_{type_}": torch.tensor(s["f1"]) for type_, s in scores["per_type"].items()})
        return out


def entities(tags: Sequence[str], scheme: str) -> list[tuple[str, int, int]]:
    """(type, first word, last word) of each entity in one sentence's tags."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [(type_, a, b) for type_, a, b in get_entities(to_iob2(tags, scheme))]
