"""Two ways a fit stops before its end, each with one line that says where and what to do.

- `FiniteLoss`: a training loss that is not a number (nan, ±inf) stops the fit within
  `trainer.log_every_n_steps` optimizer steps. Each step's check stays on the device (a step
  index and a value, updated with `torch.where`); it is read back only every
  log_every_n_steps steps — when Lightning reads the logged loss back anyway —, before any
  checkpoint is written (a model gone to nan must not replace the last good last.ckpt or
  best.ckpt) and when training ends. So a GPU is never made to wait at the other steps
  (tests/run/test_speed.py counts the read-backs).
- `Interruption`: SIGTERM (a scheduler's preemption or time limit, `kill`) and SIGINT (Ctrl-C)
  during a fit write `checkpoints/last.ckpt` at the next optimizer step, where a resumed fit
  continues bit for bit (the state every-N-steps checkpoints hold), and stop it with
  `Interrupted`: `interrupted at step N; resume with ckpt_path=<run>/checkpoints/last.ckpt`, exit
  status 143 or 130. A second Ctrl-C stops at once, without saving.

How this sits with Lightning's own SIGTERM handling (its _SignalConnector, 2.6). When a fit (or
validate, test) starts, Lightning installs a SIGTERM handler in front of the one it finds (ours).
It sets a flag on which its loops raise SIGTERMException — SystemExit with status 0, the run
ended as if it had succeeded — at the end of the batch, epoch or evaluation batch that is
running; under DDP it also broadcasts from inside the handler, a collective that the other ranks,
busy in their own, do not match, and each rank reads its flag at other points (the job hangs, or
one rank leaves). So once the loop starts (on_*_start) this callback puts its own handler back,
and clears that flag: it stops the fit itself, at the next optimizer step, where it saves (an
evaluation that is running finishes first). Under DDP the ranks agree first: at every optimizer
step each contributes the signal it got (an all-reduce of one number; Lightning already reads a
value back from every rank at every step under DDP), so all of them stop at the same step and
save there together (a checkpoint is a collective). Under SLURM, Lightning's SIGUSR1 handler
(SLURMEnvironment(auto_requeue=True)) is left alone: it saves an hpc checkpoint, through the same
atomic writer, and requeues the job.
"""
from __future__ import annotations

import math
import shlex
import signal
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import pytorch_lightning as pl
import torch

from tokentune.compat import lightning as compat
from tokentune.config import TrainConfig
from tokentune.errors import Interrupted, UserError

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


class Interruption(pl.Callback):
    """SIGTERM / SIGINT while `handling`: see the module docstring."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "checkpoints" / "last.ckpt"
        self.signum: Optional[int] = None
        self.saved_step: Optional[int] = None
        self._trainer: Optional[pl.Trainer] = None
        self._stepped_from: Optional[int] = None

    @contextmanager
    def handling(self, trainer: pl.Trainer) -> Iterator[None]:
        """Our handlers for SIGTERM and SIGINT for the duration (signals reach the main thread only)."""
        self._trainer = trainer
        main = threading.current_thread() is threading.main_thread()
        previous = {s: signal.getsignal(s) for s in self.SIGNALS} if main else {}
        for s in previous:
            signal.signal(s, self._received)
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)
            self._trainer = None

    def _take_over(self) -> None:
        """Our SIGTERM handler in place of the one Lightning put in front of it (module docstring)."""
        if self._trainer is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._received)

    def on_train_start(self, trainer, pl_module) -> None:
        self._take_over()

    def on_validation_start(self, trainer, pl_module) -> None:
        self._take_over()

    def on_test_start(self, trainer, pl_module) -> None:
        self._take_over()

    def on_predict_start(self, trainer, pl_module) -> None:
        self._take_over()

    def _received(self, signum: int, frame) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if self._trainer is not None:  # Lightning's handler may have run in front of this one
            compat.set_sigterm_flag(self._trainer, False)
        if not first and signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: stop now, nothing saved

    def _agreed(self, trainer: pl.Trainer) -> Optional[int]:
        """The signal to stop on: this process's, or under DDP the largest any rank got (every rank
        calls this at the same points, so the all-reduce matches)."""
        if trainer.world_size == 1:
            return self.signum
        import torch.distributed as dist

        flag = torch.tensor([self.signum or 0], device=trainer.strategy.root_device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        signum = int(flag.item())
        return signum or None

    # -- stop at the next optimizer step -------------------------------------------------------
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._stepped_from = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # where the every-N-steps last.ckpt is written; mid-accumulation the next batch is waited
        # for (the accumulated gradients are in no checkpoint)
        if trainer.global_step == self._stepped_from:
            return
        if trainer.world_size == 1 and self.signum is None:
            return  # nothing to read back: no step waits on the device for this
        signum = self._agreed(trainer)
        if signum is not None:
            self._stop_on(trainer, signum)
            self.save(trainer)
            raise self.stopped(trainer)

    def _stop_on(self, trainer: pl.Trainer, signum: int) -> None:
        self.signum = signum
        expect_exits = getattr(trainer.strategy.launcher, "expect_exits", None)  # run/distributed.py
        if expect_exits is not None:
            expect_exits()

    def save(self, trainer: pl.Trainer) -> None:
        trainer.save_checkpoint(self.path)  # through AtomicCheckpointIO (run/checkpoint_io.py)
        self.saved_step = trainer.global_step

    def stopped(self, trainer: pl.Trainer) -> Interrupted:
        step = self.saved_step if self.saved_step is not None else trainer.global_step
        ckpt = self.path if self.saved_step is not None or self.path.is_file() else None
        return Interrupted(self.signum or signal.SIGTERM, step, None if ckpt is None else str(ckpt),
                           str(self.path.parent.parent), resume_command(self.path),
                           quiet=not trainer.is_global_zero)

    def after_fit(self, trainer: pl.Trainer) -> None:
        """Raise `Interrupted` when a signal arrived during `trainer.fit` and the fit ended anyway
        (in its last validation, say): the fit is saved as it ended."""
        signum = self._agreed(trainer)
        if signum is not None:
            self._stop_on(trainer, signum)
            if self.saved_step is None:
                self.save(trainer)
            raise self.stopped(trainer)

    def after_scoring(self, trainer: pl.Trainer) -> None:
        """After each step that follows the fit (validate, test, export): a signal received in it
        stops the run there (its training is in last.ckpt)."""
        signum = self._agreed(trainer)
        if signum is not None:
            self._stop_on(trainer, signum)
            raise self.stopped(trainer)


def resume_command(ckpt: Path) -> str:
    """The shell command that resumes this run: its own overrides, quoted, and ckpt_path."""
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else ["<same overrides>"]
    kept = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] != "ckpt_path"]
    return " ".join(["python train.py", *map(shlex.quote, kept), shlex.quote(f"ckpt_path={ckpt}")])
