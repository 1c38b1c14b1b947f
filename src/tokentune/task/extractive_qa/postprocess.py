"""From per-window scores to one answer per question, as HF run_qa's postprocess_qa_predictions
does it: the n_best start and end tokens of every window of a question paired, pairs that end
before they start, run longer than max_answer_length tokens or touch a token outside the context
(question, special tokens, padding) dropped, the best sum of start and end logits kept; for
v2.0 the null answer when the question's null score (the lowest over its windows of the null
position's start + end logits) beats that by more than task.null_threshold.

The scores of a window come in as the device keeps them (window_top): its null score and its
n_best start and end logits over context tokens with their positions, so a split of any length
is post-processed without its full logits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

NEG = float("-inf")


def window_top(start_logits: torch.Tensor, end_logits: torch.Tensor, context_mask: torch.Tensor,
               n_best: int) -> tuple[torch.Tensor, ...]:
    """(null score, start scores, start positions, end scores, end positions) of every window of a
    batch: the n_best best context tokens each (-inf pads a window with fewer), on the device."""
    from tokentune.task.extractive_qa.windows import NULL

    start_logits, end_logits = start_logits.float(), end_logits.float()
    null = start_logits[:, NULL] + end_logits[:, NULL]
    outside = context_mask == 0
    short = max(0, n_best - start_logits.shape[1])
    top = []
    for logits in (start_logits, end_logits):
        masked = torch.nn.functional.pad(logits.masked_fill(outside, NEG), (0, short), value=NEG)
        scores, positions = masked.topk(n_best, dim=-1)
        top += [scores, positions]
    return (null, *top)


@dataclass(frozen=True)
class Span:
    score: float  # start + end logit
    window: int  # the window's row in its split
    first: int  # token positions in that window
    last: int
    start: int  # character span in the context
    end: int


def best_spans(n_examples: int, window_example: list[int], rows: list[int], null: list[float],
               start_scores, start_positions, end_scores, end_positions, char_spans, *,
               max_answer_length: int) -> tuple[list[Optional[Span]], list[float]]:
    """Per question its best span over its windows (None: no valid pair) and its null score;
    `rows` are the scored windows' rows in their split, `char_spans(row)` their tokens' (starts,
    ends), -1 outside the context."""
    best: list[Optional[Span]] = [None] * n_examples
    nulls = [math.inf] * n_examples
    for i, row in enumerate(rows):
        e = window_example[row]
        nulls[e] = min(nulls[e], null[i])
        char_starts, char_ends = char_spans(row)
        for s_score, s in zip(start_scores[i], start_positions[i]):
            if s_score == NEG:
                break
            s = int(s)
            for e_score, t in zip(end_scores[i], end_positions[i]):
                if e_score == NEG:
                    break
                t = int(t)
                if t < s or t - s + 1 > max_answer_length or char_starts[s] < 0 or char_ends[t] < 0:
                    continue
                score = s_score + e_score
                if best[e] is None or score > best[e].score:
                    best[e] = Span(score, row, s, t, char_starts[s], char_ends[t])
    return best, nulls


def span_text(context: str, start: int, end: int) -> tuple[str, int, int]:
    """The span's text and character span without the whitespace a byte-level token's span may
    carry at its edges."""
    text = context[start:end]
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    return text, start + lead, start + lead + len(text)


@dataclass(frozen=True)
class Answer:
    text: str  # "" for the null answer
    start: Optional[int]  # its character span in the context (None: the null answer)
    end: Optional[int]
    span: Optional[Span]  # the best span, taken or not
    best_text: str  # that span's text ("" where there is none)
    null_margin: float  # null score minus the best span's score (evaluate-v2.0.py's na_prob)


def choose(examples, best: list[Optional[Span]], nulls: list[float], *, version_2: bool,
           null_threshold: float) -> list[Answer]:
    out = []
    for e, span, null in zip(examples, best, nulls):
        text, start, end = span_text(e.context, span.start, span.end) if span else ("", None, None)
        margin = null - span.score if span else math.inf
        if version_2 and margin > null_threshold:
            out.append(Answer("", None, None, span, text, margin))
        else:
            out.append(Answer(text, start, end, span, text, margin))
    return out
