"""Callbacks the end-to-end tests train with: an interruption at a given step, and a record
of what a fit trained."""
from __future__ import annotations

import pytorch_lightning as pl


class Crash(Exception):
    pass


class CrashAt(pl.Callback):
    """Interrupts a fit just before it trains the batch that would make `step` optimizer steps."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, *args):
        if trainer.global_step == self.step:
            raise Crash()


class Record(pl.Callback):
    """The batches a fit trains, each one's loss, and the weights it ends training with (before
    fit() goes on to validate the best checkpoint, which loads other weights)."""

    def __init__(self):
        self.batches = 0
        self.losses: list[float] = []
        self.weights: dict = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, *args):
        self.batches += 1
        self.losses.append(outputs["loss"].item())

    def on_train_end(self, trainer, pl_module):
        self.weights = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


def whole_and_resumed(cache_dir, tmp_path, overrides, *, crash_at: int):
    """The fit of `overrides` run through (tmp_path/whole), and run again (tmp_path/run)
    interrupted before step `crash_at`, then resumed from its last.ckpt: ((results, Record) of
    the whole run, (results, Record) of the resumed part)."""
    import pytest

    from conftest import run_overrides
    from tokentune.config import compose
    from tokentune.run.fit import fit

    whole_record, record = Record(), Record()
    whole = fit(compose(run_overrides(cache_dir, tmp_path / "whole") + list(overrides)), extra_callbacks=[whole_record])
    args = run_overrides(cache_dir, tmp_path / "run") + list(overrides)
    with pytest.raises(Crash):
        fit(compose(args), extra_callbacks=[CrashAt(crash_at)])
    resumed = fit(compose(args + [f"ckpt_path={tmp_path}/run/checkpoints/last.ckpt"]), extra_callbacks=[record])
    return (whole, whole_record), (resumed, record)
