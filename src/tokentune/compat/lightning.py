"""Lightning internals (checked by tests/compat/test_lightning.py).

Lightning 2 keeps its loops' counters, its script launcher, its CSV writer's start-up and its
SIGTERM flag private; tokentune needs each for one job: where a resumed epoch starts (the
DataModule's state), which logged rows a resumed fit keeps (run/resume.py), watching DDP workers
(run/distributed.py), and stopping a fit on a signal at a step it can save (run/guards.py).
"""
from __future__ import annotations

import logging
import subprocess
import warnings
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.utilities.distributed import _set_num_threads_if_needed
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

# Lightning 2.6's own pytree helper calls an API torch 2.13 deprecated, at every step's output:
# a warning about Lightning's code, which nothing in a user's run can change.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


def quiet_info() -> None:
    """Lightning's INFO lines (the accelerators it found, an advertisement for its cloud logger,
    "Trainer.fit stopped", which checkpoint it restores) say nothing tokentune's own do not. Set
    before each Trainer is made, not in the logging config: importing Lightning resets its
    logger to INFO, after Hydra has configured logging."""
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)


def batches_done(trainer: pl.Trainer) -> int:
    """Training batches of the current epoch processed so far."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.processed


def batches_that_stepped(trainer: pl.Trainer) -> int:
    """The step Lightning logs rows at: batches that stepped the optimizer, over the whole fit
    (trainer.global_step runs one ahead of it while a batch ends, and differs after a restart)."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


class ScriptLauncher(_SubprocessScriptLauncher):
    """Lightning's DDP/FSDP launcher: it re-runs the script once per extra local device (in
    Hydra's run dir). `launch` is for a subclass to write, from the two steps below."""

    def start_workers(self) -> list[subprocess.Popen]:
        """Start local ranks 1, 2, ... (each gets a copy of os.environ as it is now), without
        Lightning's own observer of them."""
        self._call_children_scripts()
        return self.procs

    def set_num_threads(self) -> None:
        """Lightning's share of the CPU threads per process (OMP_NUM_THREADS unless set)."""
        _set_num_threads_if_needed(num_processes=self.num_processes)


class LaunchesWith:
    """A strategy mixin: the strategy starts its processes through `launcher_class` (a
    ScriptLauncher); Lightning picks a strategy's launcher in its private _configure_launcher."""

    launcher_class: type[ScriptLauncher]

    def _configure_launcher(self) -> None:
        self._launcher = self.launcher_class(self.cluster_environment, self.num_processes, self.num_nodes)


class KeepingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that it leaves an earlier metrics.csv in place when it is
    made (Lightning's deletes it there, in _check_log_dir_exists)."""

    def _check_log_dir_exists(self) -> None:
        pass


class CSVLogger(pl.loggers.CSVLogger):
    """Lightning's CSVLogger, writing through the writer a subclass's `make_writer` returns."""

    def make_writer(self) -> ExperimentWriter:
        raise NotImplementedError

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = self.make_writer()
        return self._experiment


def set_sigterm_flag(trainer: pl.Trainer, value: bool) -> None:
    """Lightning's "SIGTERM received" flag (its _SignalConnector sets it in its SIGTERM handler).
    While set, its loops raise SIGTERMException — an exit with status 0 — at the end of the
    current training batch, epoch or evaluation batch."""
    trainer._signal_connector.received_sigterm = value

