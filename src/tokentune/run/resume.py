"""What Lightning leaves out of a checkpoint but a bit-identical resumed fit needs (design.md §9).

Lightning itself restores the weights, the optimizer and scheduler states and the loops' counters,
and, through their state_dict/load_state_dict, the state of the callbacks and of the DataModule
(which holds the sampler's position and epoch: TaskDataModule.state_dict). Two things it does not:

- The global RNGs (torch CPU and CUDA, numpy, python), from which dropout draws. `ResumeState`
  saves them with every checkpoint as they are when it is written: a mid-epoch checkpoint is
  written in on_train_batch_end of the last batch trained, after its optimizer step, and nothing
  draws from them before the next batch's step (the DataLoaders seed themselves from their own
  generators, see TaskDataModule._loader; Lightning's sanity check isolates the RNGs; evaluation
  runs without dropout). A resumed fit sets them back just before its first batch, so nothing
  that runs while a fit starts (building the model and loaders, restoring) can shift them.
  Loader workers draw from RNGs of their own, seeded when they start; nothing they run (reading
  rows, collate, packing) draws from them. Under DDP every rank gets rank 0's states back (the
  one checkpoint holds those): bit for bit is what a one-process CPU fit gets (tests/run/
  test_train.py); on GPUs it also takes deterministic kernels.
- The CSV logger's rows: Lightning's CSV writer deletes metrics.csv when it starts. `CSVLogger`
  keeps, in a resumed fit, the rows the interrupted one logged up to its checkpoint; the rows of
  batches it trained after the checkpoint are dropped, since the resumed fit logs them again.
"""
from __future__ import annotations

import csv
import io
import random
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytorch_lightning as pl
import torch

from tokentune.atomic import write_atomic
from tokentune.compat import lightning as compat


def rng_states() -> dict[str, Any]:
    """The global RNG states as tensors, ints and tuples (a checkpoint loads with weights_only)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {"torch": torch.get_rng_state(), "python": random.getstate(),
              "numpy": (torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state()  # this process's device
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])


class ResumeState(pl.Callback):
    """Saves the global RNG states and how far the loggers got with each checkpoint; a fit resumed
    from it gets both back."""

    def __init__(self, started: Optional[float] = None):
        # perf_counter() when this command began, and the parts of the commands before it
        self.started = time.perf_counter() if started is None else started
        self.earlier_parts_s: list[float] = []
        self._trained = False
        self._trainer: Optional[pl.Trainer] = None
        self._rng: Optional[dict] = None  # restored: set just before the first batch trained
        self._logged_through: Optional[int] = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        trainer = self._trainer
        if trainer is None:
            return {}
        for logger in trainer.loggers:
            logger.save()  # the rows logged so far reach the disk with the checkpoint
        # rows are logged at the count of batches stepped: those at this count or before are the
        # interrupted fit's (the batch being saved logs its row just after this), later ones
        # belong to batches a resumed fit trains again
        return {"rng": rng_states(),
                "logged_through": compat.batches_that_stepped(trainer),
                "wall_time_parts_s": self.parts_s()}

    def parts_s(self) -> list[float]:
        """The wall time of every command of this run so far, this one's until now."""
        return [*self.earlier_parts_s, time.perf_counter() - self.started]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng = state.get("rng")
        self._logged_through = state.get("logged_through")
        if not self._trained:  # a resume's restore; later ones (validate/test on best.ckpt) are not
            self.earlier_parts_s = list(state.get("wall_time_parts_s", []))  # none in older checkpoints

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._trained = True
        for logger in trainer.loggers:
            if isinstance(logger, CSVLogger):
                logger.keep_through = self._logged_through
        self._logged_through = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._rng is not None:
            set_rng_states(self._rng)
            self._rng = None


class CSVLogger(compat.CSVLogger):
    """Lightning's CSVLogger, except that a resumed fit keeps the rows logged before its
    checkpoint (rows whose step is at most `keep_through`, which ResumeState sets); a fresh fit
    starts the file again, as Lightning's does."""

    keep_through: Optional[int] = None

    def make_writer(self) -> compat.KeepingWriter:
        return _ResumableWriter(self.log_dir, self)


class _ResumableWriter(compat.KeepingWriter):
    """Lightning's writer deletes metrics.csv when it is made (the hyperparameters are logged
    before a fit restores its checkpoint); this one decides what to keep at its first save.

    It also writes metrics.csv and hparams.yaml whole, through write_atomic, where Lightning's
    appends rows to the file in place (a full disk would leave half a row in it): the rows so far
    and the new ones, at each save (every flush_logs_every_n_steps steps and with each
    checkpoint; the file is a few kB)."""

    def __init__(self, log_dir: str, logger: CSVLogger):
        self._logger, self._started = logger, False
        super().__init__(log_dir)

    def log_hparams(self, params: dict[str, Any]) -> None:
        from omegaconf import OmegaConf

        self.hparams.update(params)
        try:
            text = OmegaConf.to_yaml(self.hparams)  # what Lightning's save_hparams_to_yaml writes
        except Exception:  # noqa: BLE001 - values OmegaConf cannot hold
            import yaml

            text = yaml.dump(self.hparams)
        write_atomic(Path(self.log_dir) / self.NAME_HPARAMS_FILE, text)

    def save(self) -> None:
        if not self.metrics:
            return
        path = Path(self.metrics_file_path)
        if not self._started:
            self._started = True
            header, rows = self._kept_rows(path)
        else:
            header, rows = self._rows(path)
        new = set().union(*self.metrics)
        self.metrics_keys = sorted(set(header) | set(self.metrics_keys) | new)  # as Lightning orders them
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=self.metrics_keys)
        writer.writeheader()
        writer.writerows(rows)
        writer.writerows(self.metrics)
        write_atomic(path, out.getvalue())
        self.metrics = []

    @staticmethod
    def _rows(path: Path) -> tuple[list[str], list[dict]]:
        if not path.is_file():
            return [], []
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)

    def _kept_rows(self, path: Path) -> tuple[list[str], list[dict]]:
        """A fresh fit starts the file again; a resumed one keeps the rows logged up to its
        checkpoint (rows whose step is at most keep_through)."""
        keep = self._logger.keep_through
        if keep is None:
            return [], []
        header, rows = self._rows(path)
        rows = [row for row in rows if row.get("step") and int(row["step"]) <= keep]
        return (header, rows) if rows else ([], [])
