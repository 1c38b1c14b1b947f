"""The LightningDataModule: task files → vocabulary → cached token tensors → batches.

prepare_data (once per node) reads and checks every row, builds or loads the vocabulary and
tokenizes each split into the cache; setup (every process) then finds it all in the cache.
"""
from __future__ import annotations

import logging
import os
import signal
import warnings
from functools import partial
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from tokentune.compat.lightning import batches_done
from tokentune.config import TrainConfig

# Lightning cannot see that a custom batch sampler returns every row for prediction; ours does,
# once each and in order when not grouping by length (tests/data/test_batching.py)
warnings.filterwarnings("ignore", message="You are using a custom batch sampler `LengthGroupedBatchSampler` for prediction")
from tokentune.data.batching import EpochOrder, LengthGroupedBatchSampler, collate
from tokentune.data.packing import pack
from tokentune.data.encode import EncodedSplit, TensorCache, fingerprint, task_fingerprint, tokenizer_fingerprint
from tokentune.errors import UserError
from tokentune.model.families import get_family
from tokentune.task import get_kind

log = logging.getLogger(__name__)


class TaskDataModule(pl.LightningDataModule):
    def __init__(self, cfg: TrainConfig):
        super().__init__()
        self.cfg = cfg
        self.kind = get_kind(cfg.task.kind)
        self.tokenizer = None  # the run's vocabulary (the backbone's own, or a built one)
        self.base_tokenizer = None  # the backbone's own, for embedding induction and reports
        self.texts: dict[str, list[str]] = {}  # raw text per split, for the vocabulary report
        self.splits: dict[str, EncodedSplit] = {}
        self.data_report: dict = {}  # what the kind reports of the encoded splits (results.json "data")
        self.raw: Optional[dict] = None  # the splits' rows as read, until they are encoded
        self._resume: Optional[tuple[int, int]] = None

    # -- Lightning hooks -------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.load()

    def setup(self, stage: Optional[str] = None) -> None:
        self.load()

    def read(self) -> None:
        """Read and check every split's rows: a bad row, a missing file, a split of empty
        examples fails here, before anything is built from them."""
        if self.raw is None and not self.splits:
            from tokentune.data.readers import check_empty

            self.raw = self.kind.read_splits(self.cfg.task)
            check_empty(self.cfg.task, self.kind.example_texts(self.raw), self.cfg.data.max_empty_share)

    def load(self) -> None:
        """Read, check, build the vocabulary and tokenize; every step is cached, so it is idempotent."""
        if self.splits:
            return
        from tokentune.model.tokenizer import load_base_tokenizer
        from tokentune.vocab.build import load_or_build

        task, cfg = self.cfg.task, self.cfg
        self.read()
        raw, self.raw = self.raw, None
        self.texts = self.kind.texts(raw)
        self.base_tokenizer = load_base_tokenizer(cfg.model)
        self.tokenizer = load_or_build(cfg.tokenizer, base_tokenizer=self.base_tokenizer,
                                       family=cfg.model.family, corpus=self.texts["train"],
                                       splits=self.texts, cache_dir=Path(cfg.paths.cache_dir) / "vocab")
        key = fingerprint(task_fingerprint(task), tokenizer_fingerprint(self.tokenizer),
                          cfg.data.max_length)
        tensors = self.kind.encode_splits(raw, self.tokenizer, cfg, key,
                                          TensorCache(Path(cfg.paths.cache_dir) / "data" / task.name))
        self.indices = self.kind.indices(raw)
        self.data_report = self.kind.data_report(tensors)
        self.splits = {split: EncodedSplit(t) for split, t in tensors.items()}
        if cfg.data.max_train_examples:
            n = min(cfg.data.max_train_examples, len(self.splits["train"]))
            self.splits["train"] = self.splits["train"].head(n)

    def state_dict(self) -> dict:
        """Where the training epoch stands, so a run resumed mid-epoch skips what it has seen."""
        if self.trainer is None:
            return {}
        return {"epoch": self.trainer.current_epoch, "batches_done": batches_done(self.trainer)}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self._resume = (state["epoch"], state["batches_done"])

    # -- loaders ---------------------------------------------------------------------------
    def has_labels(self, split: str) -> bool:
        return split in self.splits and self.kind.has_labels(self.splits[split].tensors)

    def _loader(self, split: str, *, train: bool, group_by_length: bool,
                shard: bool = True) -> DataLoader:
        data, cfg = self.splits[split], self.cfg.data
        # Under DDP each rank takes its slice of every global batch (see LengthGroupedBatchSampler);
        # for validation/test, torchmetrics sums the ranks' states when it computes, so the
        # metrics are those of one process over the whole split.
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if shard and trainer else (0, 1)
        if len(data) < world:
            raise UserError(f"the {split} split has {len(data)} examples, fewer than the "
                            f"{world} training processes")
        sampler = LengthGroupedBatchSampler(
            EpochOrder(len(data), shuffle=train, seed=self.cfg.seed), data.lengths(),
            cfg.batch_size if train else cfg.eval_batch_size, group_by_length=group_by_length,
            rank=rank, world_size=world)
        if train and self._resume is not None:
            sampler.resume(*self._resume)
            self._resume = None
        # Each iterator a DataLoader makes draws a seed (for its workers) from `generator`, by
        # default from torch's global RNG: that would move dropout's stream at every epoch start
        # and validation, where a resumed fit cannot replay it (see tokentune.run.resume)
        generator = torch.Generator().manual_seed(self.cfg.seed)
        start = partial(_worker_start, rank=trainer.global_rank if trainer else 0) if cfg.num_workers else None
        return DataLoader(data, batch_sampler=sampler, num_workers=cfg.num_workers,
                          pin_memory=cfg.pin_memory, persistent_workers=cfg.num_workers > 0,
                          collate_fn=self.collate_fn(train), generator=generator, worker_init_fn=start)

    def collate_fn(self, train: bool):
        """Padding to the longest row or to a bucket width (data.buckets, or the kind's one
        width); training rows packed with several sequences each under data.packing."""
        cfg, pad_id = self.cfg, self.tokenizer.pad_token_id
        widths = self.kind.fixed_widths(cfg)
        if train and cfg.data.packing:
            return partial(pack, pad_id=pad_id, budget=cfg.data.max_length,
                           pool=get_family(cfg.model.family).pool, widths=widths)
        return partial(collate, pad_id=pad_id, widths=widths)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True, group_by_length=self.cfg.data.group_by_length)

    def val_dataloader(self):
        loaders = [self._loader(s, train=False, group_by_length=True) for s in self.val_splits]
        return loaders[0] if len(loaders) == 1 else loaders  # one per split: scored side by side

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_split, train=False, group_by_length=True)

    def predict_dataloader(self) -> DataLoader:
        # original order, whole split in this process: predictions go next to the rows' indices
        return self._loader(self.predict_split, train=False, group_by_length=False, shard=False)

    predict_split = "test"
    test_split = "test"  # what trainer.test scores (tokentune-evaluate split=... sets it)

    @property
    def val_splits(self) -> list[str]:
        """What trainer.validate scores: every validation split, or the one evaluate asked for."""
        return self.eval_validation or self.cfg.task.validation_splits

    eval_validation: Optional[list[str]] = None


def _worker_start(worker_id: int, rank: int) -> None:
    """A loader worker ignores SIGTERM and SIGINT: sent to the whole process group (scancel, Ctrl-C
    in a terminal), they are the main process's to handle (run/guards.py: it saves, stops, and
    shuts its workers down); a worker killed by one would crash it first, with nothing saved.
    Then the seeding Lightning gives a worker (seed_everything(workers=True)), which it adds only
    to a loader without a worker_init_fn of its own."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if int(os.environ.get("PL_SEED_WORKERS", 0)):
        from lightning_fabric.utilities.seed import pl_worker_init_function

        pl_worker_init_function(worker_id, rank=rank)
