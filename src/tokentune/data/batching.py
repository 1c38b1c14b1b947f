"""Seeded example order, length-grouped batches, and padding collate (to the longest or a bucket).

Written here rather than taken from a library: Lightning only calls `set_epoch` on
`batch_sampler.sampler`, HF's LengthGroupedSampler is not resumable mid-epoch, and we need the
three together — a per-epoch seeded order, batches of similar lengths, and a skip of the
batches a resumed run has already seen.
"""
from __future__ import annotations

import bisect
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
    similar lengths (little padding) while every epoch still differs. `resume(epoch, done)` makes
    the next pass over that epoch skip its first `done` batches (a run resumed mid-epoch sees each
    example once).

    Under data parallelism `batch_size` is per rank: the batches are formed exactly as one process
    would form them with `batch_size * world_size` (global batches), and each rank takes every
    `world_size`-th example of each (rank r: positions r, r + world_size, ...). So N ranks × b see
    the same optimizer steps as 1 × N·b, every rank gets the same number of batches (no rank waits
    in a collective for a batch that never comes), and strided slices of a length-sorted batch
    give the ranks similar widths. A last global batch with fewer examples than ranks is joined
    to the one before it, so no rank gets an empty batch and no example is dropped.
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

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size

    def batches(self) -> list[list[int]]:
        """This rank's batches for the current epoch (all of them when world_size is 1)."""
        order, size = list(self.sampler), self.global_batch_size
        if self.group_by_length:
            mega = size * self.megabatch
            order = [i for start in range(0, len(order), mega)
                     for i in sorted(order[start:start + mega], key=lambda i: -self.lengths[i])]
        batches = [order[i:i + size] for i in range(0, len(order), size)]
        if len(batches) > 1 and len(batches[-1]) < self.world_size:
            batches[-2:] = [batches[-2] + batches[-1]]
        if self.group_by_length and self.sampler.shuffle:
            perm = torch.randperm(len(batches), generator=self.sampler.generator()).tolist()
            batches = [batches[i] for i in perm]
        return [b[self.rank::self.world_size] for b in batches]

    def __iter__(self) -> Iterator[list[int]]:
        # A generator: the skip is taken when the first batch is drawn, not when an iterator is
        # made (a DataLoader with workers makes one, drops it, and draws from a second).
        batches = self.batches()
        if self._resume is not None:
            epoch, done = self._resume
            self._resume = None
            if epoch == self.sampler.epoch:
                batches = batches[done:]
        yield from batches

    def __len__(self) -> int:
        n, size = len(self.sampler), self.global_batch_size
        joined = n > size and 0 < n % size < self.world_size  # the short tail joins its neighbour
        return math.ceil(n / size) - int(joined)


def pad_width(longest: int, widths: Optional[Sequence[int]]) -> int:
    """The row width for a batch whose longest row holds `longest` tokens: that length itself, or
    the smallest bucket width that holds it (widths end at max_length, which no row exceeds)."""
    return longest if widths is None else widths[bisect.bisect_left(widths, longest)]


def collate(features: list[dict[str, torch.Tensor]], pad_id: int,
            widths: Optional[Sequence[int]] = None) -> dict[str, torch.Tensor]:
    """Pad a list of encoded examples (right padding) to the longest one, or to the smallest
    bucket width that holds it, and stack labels."""
    lengths = [len(f["input_ids"]) for f in features]
    width = pad_width(max(lengths), widths)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(features), width), dtype=torch.long)
    for row, (f, n) in enumerate(zip(features, lengths)):
        ids[row, :n] = f["input_ids"]
        mask[row, :n] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    # per-token keys pad with 0 (token types, word starts ...), per-token labels with -100, which
    # the loss skips; per-example values (a label, answer positions) are stacked
    for key in features[0]:
        if key == "input_ids":
            continue
        if features[0][key].dim() == 0:
            batch[key] = torch.stack([f[key] for f in features])
            continue
        fill = -100 if key == "labels" else 0
        padded = torch.full((len(features), width), fill, dtype=torch.long)
        for row, (f, n) in enumerate(zip(features, lengths)):
            padded[row, :n] = f[key]
        batch[key] = padded
    return batch
