"""`trainer.strategy=ddp|fsdp`: Lightning's strategies with a process-group timeout, an FSDP wrap
policy for the model family, and a watch on the worker processes.

Why the watch: when one worker dies (the OOM killer, a SIGKILL, a crash in native code), the
others block in their next collective. Under NCCL that lasts until the process-group timeout
(`trainer.ddp_timeout_s`, 30 min by default); Lightning's own child observer polls every 5 s and
then SIGKILLs the main process without saying which worker died or how. Here the process that
launched the workers (local rank 0) polls them every `POLL_S`; when one exits non-zero it prints
one line naming the worker's rank and exit status, kills the other workers and exits 1. Each
worker it launched watches it the same way, in case the launcher is the one that dies.
Workers that torchrun or srun start are theirs to watch: torchrun's agent stops all workers when
one fails, and `hydra/launcher=slurm` runs srun with SLURM_KILL_BAD_EXIT=1.
"""
from __future__ import annotations

import abc
import atexit
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import Any, Callable, Optional, Union

from pytorch_lightning.strategies import DDPStrategy, FSDPStrategy, Strategy

from tokentune.compat.lightning import LaunchesWith, ScriptLauncher
from tokentune.config import TrainerConfig
from tokentune.errors import Interrupted, UserError
from tokentune.model.families import get_family

POLL_S = 0.5  # how often a watch looks; a dead worker is reported within about this long
SETTLE_S = 3.0  # after an error in the main thread: how long to look for a dead worker behind it
WAIT_S = 30.0  # at exit, how long the launcher waits for its workers to finish before killing them
LAUNCHER_PID = "TOKENTUNE_DDP_LAUNCHER_PID"  # set in the workers' environment by the launcher


def build_strategy(cfg: TrainerConfig, family: str) -> Union[str, Strategy]:
    """The Trainer's `strategy` argument for trainer.strategy (auto: Lightning's choice)."""
    if cfg.strategy == "auto":
        return "auto"
    timeout = timedelta(seconds=cfg.ddp_timeout_s)
    if cfg.strategy == "ddp":
        return WatchedDDPStrategy(timeout=timeout)
    # "full": best.ckpt / last.ckpt stay single files that evaluate/predict and resume read as is
    return WatchedFSDPStrategy(timeout=timeout, auto_wrap_policy=block_classes(family),
                               state_dict_type="full")


def block_classes(family: str) -> set[type]:
    """The modules FSDP shards as units: the family's `fsdp_units` (its transformer blocks, and
    BERT's embeddings), the classes transformers keeps whole when it places a model on devices."""
    units = set()
    for path in get_family(family).fsdp_units:
        module, _, name = path.rpartition(".")
        units.add(getattr(importlib.import_module(module), name))
    return units


class WatchedLauncher(ScriptLauncher):
    """Lightning's launcher (it re-runs the script once per extra local device, with Hydra's run
    dir), with our watches in place of Lightning's observer."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.watch: Optional[_Watch] = None

    def launch(self, function: Callable, *args: Any, trainer: Any = None, **kwargs: Any) -> Any:
        env = self.cluster_environment
        env.validate_settings(num_devices=self.num_processes, num_nodes=self.num_nodes)
        if not env.creates_processes_externally:
            os.environ[LAUNCHER_PID] = str(os.getpid())
            procs = self.start_workers()
            del os.environ[LAUNCHER_PID]
            self.watch = WorkerWatch(procs, first_rank=env.global_rank() + 1)
            self.watch.start()
            # outlive the workers: none should see its launcher gone while it is finishing
            atexit.register(self.watch.wait_for_workers, WAIT_S)
        elif self.watch is None and os.environ.get(LAUNCHER_PID) == str(os.getppid()):
            # a worker we launched (not one of torchrun's or srun's); fit, validate and test
            # each call launch, the watch starts once
            self.watch = LauncherWatch(os.getppid(), rank=env.global_rank(),
                                       launcher_rank=env.global_rank() - env.local_rank())
            self.watch.start()
        self.set_num_threads()
        try:
            return function(*args, **kwargs)
        except (UserError, Interrupted):
            raise  # this process's own clear message
        except Exception:
            # A dead peer often surfaces first as a collective's error here (gloo: "connection
            # closed"); report the death it stands for rather than its traceback.
            if self.watch is not None:
                self.watch.settle(SETTLE_S)
            raise

    def expect_exits(self) -> None:
        """Every rank is about to stop (a signal they agreed on, run/guards.py): a worker that
        exits now is not a failure."""
        if isinstance(self.watch, WorkerWatch):
            self.watch.disarm()

    def kill(self, signum: Any) -> None:
        """Lightning stopping the workers after an error in this process: not a worker's failure."""
        if isinstance(self.watch, WorkerWatch):
            self.watch.disarm()
        super().kill(signum)


class WatchedDDPStrategy(LaunchesWith, DDPStrategy):
    launcher_class = WatchedLauncher


class WatchedFSDPStrategy(LaunchesWith, FSDPStrategy):
    launcher_class = WatchedLauncher


class _Watch(threading.Thread, abc.ABC):
    """Polls `failure()` every POLL_S; on a failure, says so in one line and ends the process."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name=type(self).__name__)
        self._reporting = threading.Lock()  # the thread and `settle` may find the failure together

    @abc.abstractmethod
    def failure(self) -> Optional[str]:
        """What went wrong, in words, or None while all is well."""

    def stop_others(self) -> None:
        """Stop the processes that would otherwise wait for this one (none by default)."""

    def run(self) -> None:
        while True:
            self.check()
            time.sleep(POLL_S)

    def settle(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check()
            time.sleep(POLL_S / 5)

    def check(self) -> None:
        message = self.failure()
        if message is None:
            return
        self._reporting.acquire()  # a second reporter waits here until the first has exited
        print(f"error: {message}", file=sys.stderr, flush=True)
        self.stop_others()
        # os._exit, not sys.exit: the main thread may be blocked inside a collective for good
        os._exit(1)


class WorkerWatch(_Watch):
    """In the launcher: the workers it started (local ranks 1, 2, ...)."""

    def __init__(self, procs: list[subprocess.Popen], first_rank: int):
        super().__init__()
        self.procs, self.first_rank = procs, first_rank
        self._disarmed = threading.Event()

    def disarm(self) -> None:
        self._disarmed.set()

    def failure(self) -> Optional[str]:
        if self._disarmed.is_set():
            return None
        for i, proc in enumerate(self.procs):
            code = proc.poll()
            if code:
                return (f"DDP worker rank {self.first_rank + i} (pid {proc.pid}) "
                        f"{_exit_status(code)}; stopping all workers")
        return None

    def stop_others(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()  # SIGKILL: SIGTERM does not end a process blocked in a collective

    def wait_for_workers(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.disarm()  # our kill, not the worker's failure
                proc.kill()


class LauncherWatch(_Watch):
    """In a worker: the launcher that started it."""

    def __init__(self, launcher_pid: int, rank: int, launcher_rank: int):
        super().__init__()
        self.launcher_pid, self.rank, self.launcher_rank = launcher_pid, rank, launcher_rank

    def failure(self) -> Optional[str]:
        if os.getppid() == self.launcher_pid:
            return None
        return (f"the DDP launcher (rank {self.launcher_rank}, pid {self.launcher_pid}) is gone; "
                f"stopping worker rank {self.rank}")


def _exit_status(code: int) -> str:
    """Popen's returncode in words: negative is the signal that ended the process."""
    if code < 0:
        return f"was killed by signal {-code} ({signal.Signals(-code).name})"
    return f"exited with status {code}"
