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
    sizes = [len(b) for b in batches]
    # 1000 = 62 × 16 + 8: one short batch, wherever grouping shuffles it to (last without grouping)
    assert sorted(sizes, reverse=True) == [16] * 62 + [8]
    assert group or sizes[-1] == 8


def test_order_depends_on_seed_and_epoch_only():
    assert list(sampler(epoch=1)) == list(sampler(epoch=1))
    assert list(sampler(epoch=1)) != list(sampler(epoch=2))
    assert list(sampler(seed=1)) != list(sampler(seed=2))


def test_grouping_cuts_padding():
    def padding(batches):
        return sum(max(LENGTHS[i] for i in b) * len(b) - sum(LENGTHS[i] for i in b) for b in batches)
    assert padding(list(sampler(group=True))) < 0.25 * padding(list(sampler(group=False)))


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("group", [True, False])
def test_ranks_slice_the_batches_of_one_process_with_the_global_batch_size(world, group):
    single = list(sampler(group=group, bs=16 * world))
    ranks = [list(sampler(group=group, rank=r, world=world)) for r in range(world)]
    assert all(len(r) == len(single) == len(sampler(rank=0, world=world)) for r in ranks)
    for step, batch in enumerate(single):
        slices = [r[step] for r in ranks]
        assert sorted(i for s in slices for i in s) == sorted(batch)  # the same optimizer step
        assert max(map(len, slices)) - min(map(len, slices)) <= 1
    seen = sorted(i for r in ranks for b in r for i in b)
    assert seen == list(range(len(LENGTHS)))  # each example once per epoch, on one rank


def test_a_tail_smaller_than_the_world_joins_the_batch_before_it():
    lengths = LENGTHS[:65]  # 2 global batches of 32 + 1 example for 2 ranks
    ranks = [LengthGroupedBatchSampler(EpochOrder(65, shuffle=True, seed=1), lengths, 16,
                                       group_by_length=True, rank=r, world_size=2) for r in range(2)]
    batches = [list(s) for s in ranks]
    assert [len(b) for b in batches] == [len(s) for s in ranks] == [2, 2]
    assert all(b for r in batches for b in r)  # no rank gets an empty batch
    assert sorted(i for r in batches for b in r for i in b) == list(range(65))


def test_resume_under_data_parallelism_skips_the_same_steps_on_every_rank():
    for rank in range(2):
        full = list(sampler(epoch=1, rank=rank, world=2))
        s = sampler(rank=rank, world=2)
        s.resume(1, 7)
        assert list(s) == full[7:]


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
