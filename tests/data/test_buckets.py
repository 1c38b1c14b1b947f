"""Bucketed padding (data.buckets): fixed widths, every example once, contents intact; loader workers."""
import random
from functools import partial

import pytest
import torch
from torch.utils.data import DataLoader

from tokentune.config import DataConfig
from tokentune.data.batching import EpochOrder, LengthGroupedBatchSampler, collate, pad_width

_rng = random.Random(1)
LENGTHS = [_rng.randint(2, 128) for _ in range(700)]
FEATURES = [{"input_ids": torch.arange(1, n + 1), "token_type_ids": (torch.arange(n) >= n // 2).long(),
             "labels": torch.tensor(i % 3)} for i, n in enumerate(LENGTHS)]
WIDTHS = DataConfig(buckets=[16, 32, 64, 128], max_length=128).widths()


@pytest.mark.parametrize("group", [True, False])
def test_every_example_once_in_a_bucket_width(group):
    sampler = LengthGroupedBatchSampler(EpochOrder(len(LENGTHS), shuffle=True, seed=3), LENGTHS, 32,
                                        group_by_length=group)
    seen, widths = [], set()
    for indices in sampler:
        batch = collate([FEATURES[i] for i in indices], pad_id=0, widths=WIDTHS)
        width = batch["input_ids"].shape[1]
        longest = max(LENGTHS[i] for i in indices)
        assert width in WIDTHS and width >= longest
        assert all(w < longest for w in WIDTHS if w < width)  # the smallest width that holds it
        widths.add(width)
        for row, i in enumerate(indices):
            n = LENGTHS[i]
            assert batch["input_ids"][row, :n].tolist() == list(range(1, n + 1))
            assert batch["input_ids"][row, n:].eq(0).all()
            assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (width - n)
            assert batch["token_type_ids"][row, :n].equal(FEATURES[i]["token_type_ids"])
        assert batch["labels"].tolist() == [i % 3 for i in indices]
        seen += indices
    assert sorted(seen) == list(range(len(LENGTHS)))
    # grouped by length, batches of short sequences stay in the small buckets
    assert widths == (set(WIDTHS) if group else {128})


@pytest.mark.parametrize("max_length,widths", [(128, [16, 32, 64, 128]), (50, [16, 32, 50]),
                                               (64, [16, 32, 64]), (256, [16, 32, 64, 128, 256])])
def test_widths_end_at_max_length(max_length, widths):
    assert DataConfig(buckets=[16, 32, 64, 128], max_length=max_length).widths() == widths


def test_no_buckets_pads_to_the_longest():
    assert DataConfig().widths() is None
    assert pad_width(37, None) == 37
    assert collate(FEATURES[:4], pad_id=0)["input_ids"].shape[1] == max(LENGTHS[:4])


def test_loader_workers_keep_the_order_and_the_resume_point():
    """The batch sampler (and its resume point) lives in the main process; workers only collate."""
    def epochs(workers):
        sampler = LengthGroupedBatchSampler(EpochOrder(len(LENGTHS), shuffle=True, seed=3), LENGTHS, 32,
                                            group_by_length=True)
        loader = DataLoader(FEATURES, batch_sampler=sampler, num_workers=workers, persistent_workers=workers > 0,
                            collate_fn=partial(collate, pad_id=0, widths=WIDTHS))
        sampler.resume(0, 5)  # a run resumed after 5 batches of epoch 0
        first = [b["input_ids"] for b in loader]
        sampler.sampler.set_epoch(1)  # what Lightning does before the next epoch
        return first, [b["input_ids"] for b in loader]

    (first0, second0), (first2, second2) = epochs(0), epochs(2)
    assert len(first0) == len(second0) - 5 == 22 - 5
    for a, b in zip(first0 + second0, first2 + second2, strict=True):
        assert a.equal(b)
