"""Packed batches (data.packing): rows within the budget, each sequence whole and findable."""
import random

import pytest
import torch

from tokentune.data.packing import pack, pack_rows


@pytest.mark.parametrize("seed", range(5))
def test_rows_hold_every_sequence_once_within_the_budget(seed):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 64) for _ in range(rng.randint(1, 200))]
    rows = pack_rows(lengths, budget=64)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 64 for row in rows)
    # first fit by decreasing length leaves at most one row half empty or less
    assert sum(sum(lengths[i] for i in row) <= 32 for row in rows) <= 1


def test_a_sequence_longer_than_a_row_is_refused():
    with pytest.raises(ValueError, match="70 tokens does not fit a row of 64"):
        pack_rows([10, 70], budget=64)


def features(lengths, pad_id=0, last_pad=()):
    out = []
    for i, n in enumerate(lengths):
        ids = torch.arange(100 * (i + 1), 100 * (i + 1) + n)
        if i in last_pad:
            ids[-1] = pad_id
        out.append({"input_ids": ids, "token_type_ids": (torch.arange(n) >= n // 2).long(),
                    "labels": torch.tensor(i)})
    return out


@pytest.mark.parametrize("pool", ["first", "last"])
def test_layout_positions_sequence_ids_and_pooled_tokens(pool):
    lengths = [5, 9, 3, 7, 2, 6]
    feats = features(lengths, last_pad={3})
    batch = pack(feats, pad_id=0, budget=12, pool=pool, widths=[8, 16])
    rows, width = batch["input_ids"].shape
    assert width == 16 and rows == 3  # 32 tokens in rows of at most 12, padded to the 16 bucket
    flat = {k: batch[k].flatten() for k in ("input_ids", "position_ids", "sequence_ids", "token_type_ids")}
    for i, (f, n) in enumerate(zip(feats, lengths)):
        where = (flat["sequence_ids"] == i).nonzero().flatten()
        assert len(where) == n and (where.diff() == 1).all()  # contiguous, inside one row
        assert where[0] // width == where[-1] // width
        assert flat["input_ids"][where].equal(f["input_ids"])
        assert flat["token_type_ids"][where].equal(f["token_type_ids"])
        assert flat["position_ids"][where].tolist() == list(range(n))  # restart per sequence
        # BERT pools [CLS]; GPT-2 the rightmost non-pad token (sequence 3 ends with the pad id)
        offset = 0 if pool == "first" else n - 1 - (i == 3)
        assert batch["pool_index"][i] == where[0] + offset
    padding = flat["sequence_ids"] == -1
    assert padding.sum() == rows * width - sum(lengths) and flat["input_ids"][padding].eq(0).all()
    assert batch["labels"].tolist() == list(range(len(lengths)))  # the batch's order, not the rows'
