"""One trial's job: its failure is the trial's, not the sweep's; its value is the task's metric."""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Tuple

from hydra.core.utils import JobReturn


class TrialFailed(Exception):
    """A trial's job ended with a user error (already printed by the entry point)."""


class SweepTask:
    """Hydra's task function as the launcher runs it in a sweep.

    tokentune's entry points end a user error with SystemExit(2), which is right for one run but
    would end the whole sweep from inside the launcher. Hydra records an exception as a FAILED
    JobReturn and goes on, so the exit becomes an exception with the error's message. (A class,
    not a closure: the joblib and submitit launchers pickle the task function.)
    """

    def __init__(self, task_function: Callable[[Any], Any]) -> None:
        self.task_function = task_function

    def __call__(self, cfg: Any) -> Any:
        try:
            return self.task_function(cfg)
        except SystemExit as exit_:
            if exit_.code != 2:  # a fit stopped by SIGTERM/SIGINT (143, 130): the sweep stops too
                raise
            # the entry point raised `from None` inside its handler: the error is the context
            raise TrialFailed(str(exit_.__context__ or f"exit status {exit_.code}")) from None


def outcome(ret: JobReturn, metric: str) -> Tuple[Optional[float], Optional[str], Optional[str]]:
    """(value, error, run_dir) of a finished job: a value for a success, an error otherwise."""
    try:
        results = ret.return_value  # re-raises the job's exception for a failed job
    except Exception as err:  # noqa: BLE001 - any failure of a trial is that trial's result
        return None, first_line(err), None
    run_dir = results.get("run_dir") if isinstance(results, dict) else None
    try:
        value = float(results["validation"][metric])
    except (KeyError, TypeError, ValueError):
        return None, f"the job's results have no {metric}", run_dir
    if not math.isfinite(value):
        return None, f"{metric} is {value}", run_dir
    return value, None, run_dir


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
