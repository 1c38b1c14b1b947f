"""The batch sampler: coverage, determinism, grouping, sharding, mid-epoch resume."""
import random

import pytest
import torch

from tokentune.data.batching import EpochOrder, LengthGroupedBatchSampler, collate

_rng = random.Random(0)
LENGTHS = [_rng.randint(3, 60) for _ in range(1000)]


def sampler(epoch=0, group=True, rank=0, world=1, seed=7, bs=16):
    s = LengthGroupedBatchSampler(EpochOrder(len(LENGTHS), shuffle=True, seed=seed), LENGTHS, bs,
                                  group_by_length=group, rank=rank, world_size=world)
    s.sampler.set_epoch(epoch)
    return s


@pytest.mark.parametrize("group", [True, False])
def test_every_example_once_per_epoch(group):
    batches = list(sampler(group=group))
    seen = sorted(i for b in batches for i in b)
    assert seen == list(range(len(LENGTHS)))
    assert len(batches) == len(sampler(group=group)) == 63
    assert all(len(b) == 16 for b in batches[:-1]) or group


def test_order_depends_on_seed_and_epoch_only():
    assert list(sampler(epoch=1)) == list(sampler(epoch=1))
    assert list(sampler(epoch=1)) != list(sampler(epoch=2))
    assert list(sampler(seed=1)) != list(sampler(seed=2))


def test_grouping_cuts_padding():
    def padding(batches):
        return sum(max(LENGTHS[i] for i in b) * len(b) - sum(LENGTHS[i] for i in b) for b in batches)
    assert padding(list(sampler(group=True))) < 0.25 * padding(list(sampler(group=False)))


def test_ranks_split_the_batches_without_overlap():
    r0, r1 = list(sampler(rank=0, world=2)), list(sampler(rank=1, world=2))
    assert len(r0) == len(r1) == 31
    assert not {i for b in r0 for i in b} & {i for b in r1 for i in b}


def test_resume_skips_the_batches_already_seen():
    full = list(sampler(epoch=3))
    s = sampler()
    s.resume(3, 10)
    assert list(s) == full[10:]
    assert list(s) == full  # only the resumed pass skips
    s.resume(2, 10)
    s.sampler.set_epoch(3)  # Lightning moved on to the next epoch: nothing to skip
    assert list(s) == full


def test_collate_pads_right_and_masks():
    feats = [{"input_ids": torch.tensor([5, 6, 7]), "token_type_ids": torch.tensor([0, 0, 1]),
              "labels": torch.tensor(1)},
             {"input_ids": torch.tensor([8]), "token_type_ids": torch.tensor([0]), "labels": torch.tensor(0)}]
    b = collate(feats, pad_id=0)
    assert b["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert b["token_type_ids"].tolist() == [[0, 0, 1], [0, 0, 0]]
    assert b["labels"].tolist() == [1, 0]
