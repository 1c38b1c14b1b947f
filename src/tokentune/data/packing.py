"""Padding-free training batches: several sequences packed into each row.

A batch's sequences are placed first-fit, longest first, into rows of at most `budget` tokens.
Each token carries the index of its sequence (`sequence_ids`, -1 on padding) so that the model
can let it attend only within its own sequence, and a position that restarts at 0 for every
sequence. `pool_index` says, per sequence and in the batch's order, which flat position
(row * width + column) the classification head reads, so labels and logits keep the order of
the unpacked batch and the loss is the same mean over sequences.

Written here because no library packs for sequence classification: transformers'
DataCollatorWithFlattening packs causal-LM sequences for flash-attention's varlen kernel, with
no per-sequence pooling, and BERT's bidirectional mask ignores position_ids-based packing.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from tokentune.data.batching import pad_width


def pack_rows(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices grouped into rows of at most `budget` tokens, first fit in order of decreasing length."""
    rows: list[list[int]] = []
    free: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        n = lengths[i]
        if n > budget:
            raise ValueError(f"a sequence of {n} tokens does not fit a row of {budget}")
        for r, space in enumerate(free):
            if n <= space:
                rows[r].append(i)
                free[r] -= n
                break
        else:
            rows.append([i])
            free.append(budget - n)
    return rows


def _pool_offset(ids: torch.Tensor, pool: str, pad_id: int) -> int:
    """Where in its sequence the head reads: the family's `pool` (tokentune.model.families.POOLS)."""
    if pool == "first":
        return 0
    # as GPT2ForSequenceClassification: the rightmost token that is not the pad id, else the first
    real = (ids != pad_id).nonzero()
    return int(real[-1]) if len(real) else 0


def pack(features: list[dict[str, torch.Tensor]], pad_id: int, *, budget: int, pool: str,
         widths: Optional[Sequence[int]] = None) -> dict[str, torch.Tensor]:
    """A packed batch: input_ids, position_ids, sequence_ids (and token_type_ids) of shape
    (rows, width), pool_index and labels of shape (sequences,).

    The width is the fullest row's length, or the smallest bucket width that holds it."""
    lengths = [len(f["input_ids"]) for f in features]
    rows = pack_rows(lengths, budget)
    width = pad_width(max(sum(lengths[i] for i in row) for row in rows), widths)
    shape = (len(rows), width)
    ids = torch.full(shape, pad_id, dtype=torch.long)
    positions = torch.zeros(shape, dtype=torch.long)
    sequences = torch.full(shape, -1, dtype=torch.long)
    types = torch.zeros(shape, dtype=torch.long) if "token_type_ids" in features[0] else None
    pool_index = torch.empty(len(features), dtype=torch.long)
    for r, row in enumerate(rows):
        start = 0
        for i in row:
            f, end = features[i], start + lengths[i]
            ids[r, start:end] = f["input_ids"]
            positions[r, start:end] = torch.arange(lengths[i])
            sequences[r, start:end] = i
            if types is not None:
                types[r, start:end] = f["token_type_ids"]
            pool_index[i] = r * width + start + _pool_offset(f["input_ids"], pool, pad_id)
            start = end
    batch = {"input_ids": ids, "position_ids": positions, "sequence_ids": sequences,
             "pool_index": pool_index}
    if types is not None:
        batch["token_type_ids"] = types
    if "labels" in features[0]:
        batch["labels"] = torch.stack([f["labels"] for f in features])
    return batch
