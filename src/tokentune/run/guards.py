"""A fit that stops before its end, with one line that says where and what to do.

- `FiniteLoss`: a training loss that is not a number (nan, ±inf) stops the fit within
  `trainer.log_every_n_steps` optimizer steps. Each step's check stays on the device (a step
  index and a value, updated with `torch.where`); it is read back only every
  log_every_n_steps steps — when Lightning reads the logged loss back anyway —, before any
  checkpoint is written (a model gone to nan must not replace the last good last.ckpt or
  best.ckpt) and when training ends. So a GPU is never made to wait at the other steps
  (tests/run/test_speed.py counts the read-backs).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Optional

import pytorch_lightning as pl
import torch

from tokentune.config import TrainConfig
from tokentune.errors import UserError

FULL_PRECISION = ("32", "32-true", "64", "64-true")


class FiniteLoss(pl.Callback):
    """Stops the fit, with one line naming the step and the likely cause, once a training loss
    is not finite; see the module docstring for when it looks."""

    def __init__(self, cfg: TrainConfig):
        self.every = cfg.trainer.log_every_n_steps
        self.lr, self.precision = cfg.optimizer.lr, cfg.trainer.precision
        self.clip = cfg.trainer.gradient_clip_val
        self._step = 0  # the optimizer steps done when the current batch started
        self._first: Optional[torch.Tensor] = None  # the step of the first non-finite loss, -1: none
        self._value: Optional[torch.Tensor] = None  # that loss

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):
            loss = loss.detach().float()
            if self._first is None:
                self._first = torch.full((), -1, dtype=torch.long, device=loss.device)
                self._value = torch.zeros((), device=loss.device)
            new = ~torch.isfinite(loss) & (self._first < 0)  # on the device: nothing waits
            self._first = torch.where(new, self._step, self._first)
            self._value = torch.where(new, loss, self._value)
        if trainer.global_step != self._step and trainer.global_step % self.every == 0:
            self.check()

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self.check()

    def on_train_end(self, trainer, pl_module) -> None:
        self.check()

    def check(self) -> None:
        if self._first is None:
            return
        step = int(self._first)  # the read-back
        if step < 0:
            return
        value = float(self._value)
        kind = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        advice = f"lower optimizer.lr ({self.lr:g}?)"
        if self.precision not in FULL_PRECISION:
            advice += " or use trainer.precision=32-true"
        elif self.clip is None:
            advice += " or set trainer.gradient_clip_val (e.g. 1.0)"
        else:
            advice += " or look for extreme values in the training data"
        raise UserError(f"training loss is not finite ({kind}) at step {step}; {advice}")

