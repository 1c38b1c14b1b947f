"""Progress bars that read the training loss back once every `callbacks.refresh_rate` steps.

Lightning turns every value logged with `prog_bar=True` into a Python number after every step
(its logger connector's on_batch_end calls `.item()`), which on a GPU waits for the step to
finish and so stops the host from queueing the next one. The loss is therefore logged for the
loggers only, and these bars fetch it themselves at their own interval.
"""
from __future__ import annotations

from typing import Optional

from pytorch_lightning.callbacks import RichProgressBar, TQDMProgressBar


class _LossEvery:
    def __init__(self, *, every: int, **kwargs):
        super().__init__(**kwargs)
        self.every = every
        self._loss: Optional[float] = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        done = batch_idx + 1
        if done % self.every == 0 or done == self.total_train_batches:
            loss = trainer.callback_metrics.get("train/loss")
            self._loss = None if loss is None else loss.item()  # the bar's one read-back
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        if self._loss is not None:
            metrics["train/loss"] = self._loss
        return metrics


class TQDMLossBar(_LossEvery, TQDMProgressBar):
    """Redraws and reads the loss every `every` steps."""

    def __init__(self, every: int):
        super().__init__(every=every, refresh_rate=every)


class RichLossBar(_LossEvery, RichProgressBar):
    """Reads the loss every `every` steps (rich redraws on its own clock, 10 times a second)."""

    def __init__(self, every: int):
        super().__init__(every=every, refresh_rate=10)
