"""Seeded example order, length-grouped batches, and padding collate.

Written here rather than taken from a library: Lightning only calls `set_epoch` on
`batch_sampler.sampler`, HF's LengthGroupedSampler is not resumable mid-epoch, and we need the
three together — a per-epoch seeded order, batches of similar lengths, and a skip of the
batches a resumed run has already seen.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Sequence

import torch
from torch.utils.data import Sampler


class EpochOrder(Sampler[int]):
    """A permutation of range(n) that depends only on (seed, epoch); identity when not shuffled."""

    def __init__(self, n: int, *, shuffle: bool, seed: int):
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        return iter(torch.randperm(self.n, generator=self.generator()).tolist())

    def __len__(self) -> int:
        return self.n


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Batches of `batch_size` indices in the order of `sampler`, optionally grouped by length.

    With grouping, the shuffled order is cut into mega-batches of `megabatch` batches, each
    sorted by length and cut into batches, and the batch order is shuffled again: batches hold
    similar lengths (little padding) while every epoch still differs. Under data parallelism each
    rank takes every `world_size`-th batch. `resume(epoch, done)` makes the next pass over that
    epoch skip its first `done` batches (a run resumed mid-epoch sees each example once).
    """

    def __init__(self, sampler: EpochOrder, lengths: Sequence[int], batch_size: int, *,
                 group_by_length: bool, megabatch: int = 50, rank: int = 0, world_size: int = 1):
        self.sampler = sampler  # Lightning calls sampler.set_epoch before each epoch
        self.lengths = lengths
        self.batch_size, self.group_by_length, self.megabatch = batch_size, group_by_length, megabatch
        self.rank, self.world_size = rank, world_size
        self._resume: Optional[tuple[int, int]] = None

    def resume(self, epoch: int, done: int) -> None:
        self.sampler.set_epoch(epoch)
        self._resume = (epoch, done)

    def batches(self) -> list[list[int]]:
        order = list(self.sampler)
        if self.group_by_length:
            size = self.batch_size * self.megabatch
            order = [i for start in range(0, len(order), size)
                     for i in sorted(order[start:start + size], key=lambda i: -self.lengths[i])]
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.group_by_length and self.sampler.shuffle:
            perm = torch.randperm(len(batches), generator=self.sampler.generator()).tolist()
            batches = [batches[i] for i in perm]
        usable = len(batches) - len(batches) % self.world_size if self.world_size > 1 else len(batches)
        return batches[self.rank:usable:self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.batches()
        if self._resume is not None:
            epoch, done = self._resume
            self._resume = None
            if epoch == self.sampler.epoch:
                batches = batches[done:]
        return iter(batches)

    def __len__(self) -> int:
        n = math.ceil(len(self.sampler) / self.batch_size)
        return n // self.world_size if self.world_size > 1 else n


def collate(features: list[dict[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of encoded examples to the longest one (right padding) and stack labels."""
    lengths = [len(f["input_ids"]) for f in features]
    width = max(lengths)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(features), width), dtype=torch.long)
    for row, (f, n) in enumerate(zip(features, lengths)):
        ids[row, :n] = f["input_ids"]
        mask[row, :n] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in features[0]:
        types = torch.zeros((len(features), width), dtype=torch.long)
        for row, (f, n) in enumerate(zip(features, lengths)):
            types[row, :n] = f["token_type_ids"]
        batch["token_type_ids"] = types
    if "labels" in features[0]:
        batch["labels"] = torch.stack([f["labels"] for f in features])
    return batch
