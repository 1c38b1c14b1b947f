"""SQuAD's exact match and F1 as a torchmetrics Metric: per window only its null score and its
n_best start and end logits with their positions are kept, on the device and gathered across
processes (no host sync per batch, no split's full logits in memory); the answers are chosen and
scored once per epoch, against the split's windows that `bind` hands over."""
from __future__ import annotations

from typing import Optional

import torch
import torchmetrics
from torchmetrics.utilities import dim_zero_cat

from tokentune.task.extractive_qa.postprocess import window_top

STATES = ("rows", "null", "start_scores", "start_positions", "end_scores", "end_positions")


class SquadMetric(torchmetrics.Metric):
    """`task.metrics` (exact_match, f1) over the questions whose windows were scored, in percent;
    for v2.0 also HasAns_/NoAns_ exact and f1, best_exact and best_f1 with their thresholds."""

    full_state_update = False

    def __init__(self, task):
        super().__init__()
        self.task = task
        for name in STATES:
            self.add_state(name, default=[], dist_reduce_fx="cat")
        self.windows: Optional[SplitWindows] = None

    def bind(self, windows: "SplitWindows") -> None:
        self.windows = windows

    def update(self, rows: torch.Tensor, start_logits: torch.Tensor, end_logits: torch.Tensor,
               context_mask: torch.Tensor) -> None:
        self.rows.append(rows)
        for name, value in zip(STATES[1:], window_top(start_logits, end_logits, context_mask, self.task.n_best)):
            getattr(self, name).append(value)

    def compute(self) -> dict[str, torch.Tensor]:
        if self.windows is None:
            raise RuntimeError("SquadMetric.compute before bind: the kind's bind_metrics hands it the split")
        states = [dim_zero_cat(getattr(self, name)).tolist() for name in STATES]
        answered = self.windows.answers(*states, task=self.task)
        scores = self.windows.scores(answered, version_2=self.task.version_2)
        keep = {k: v for k, v in scores.items() if k in self.task.metrics or k not in ("exact_match", "f1")}
        return {k: torch.tensor(v, dtype=torch.float32) for k, v in keep.items()}


class SplitWindows:
    """What scoring a split needs besides the model's scores: its questions, each window's
    question and the character spans of its tokens."""

    def __init__(self, examples, tensors: dict):
        self.examples = examples
        self.tensors = tensors
        self.window_example = tensors["window_example"].tolist()
        self._spans: Optional[tuple[list[int], list[int], list[int]]] = None

    def char_spans(self, row: int) -> tuple[list[int], list[int]]:
        if self._spans is None:  # read once, at the first answer
            t = self.tensors
            self._spans = (t["offsets"].tolist(), t["char_starts"].tolist(), t["char_ends"].tolist())
        offsets, starts, ends = self._spans
        a, b = offsets[row], offsets[row + 1]
        return starts[a:b], ends[a:b]

    def answers(self, rows, null, start_scores, start_positions, end_scores, end_positions, *, task) -> dict:
        """{question index: Answer} for the questions with a scored window."""
        from tokentune.task.extractive_qa.postprocess import best_spans, choose

        best, nulls = best_spans(len(self.examples), self.window_example, rows, null, start_scores,
                                 start_positions, end_scores, end_positions, self.char_spans,
                                 max_answer_length=task.max_answer_length)
        seen = sorted({self.window_example[r] for r in rows})
        chosen = choose([self.examples[i] for i in seen], [best[i] for i in seen], [nulls[i] for i in seen],
                        version_2=task.version_2, null_threshold=task.null_threshold)
        return dict(zip(seen, chosen))

    def scores(self, answered: dict, *, version_2: bool) -> dict[str, float]:
        from tokentune.task.extractive_qa.squad_metrics import scores_v1, scores_v2

        refs = {self.examples[i].id: [t for t, _ in self.examples[i].answers] for i in answered}
        preds = {self.examples[i].id: a.text for i, a in answered.items()}
        if not version_2:
            return scores_v1(refs, preds)
        return scores_v2(refs, preds, {self.examples[i].id: a.best_text for i, a in answered.items()},
                         {self.examples[i].id: a.null_margin for i, a in answered.items()})
