"""What the experiment tracker (wandb) keeps beyond Lightning's metrics and hyperparameters: the
run's reports in its summary, and a run that is closed when the job ends."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

from pytorch_lightning.loggers import Logger, WandbLogger


@contextmanager
def tracking(loggers: Sequence[Logger]) -> Iterator[None]:
    """Finish the wandb run when the job ends, failed or not: in a Hydra multirun the next job
    runs in this same process, and Lightning's WandbLogger would go on logging into a run left
    open."""
    ok = False
    try:
        yield
        ok = True
    finally:
        if any(isinstance(lg, WandbLogger) for lg in loggers):
            import wandb

            if wandb.run is not None:
                wandb.finish(exit_code=0 if ok else 1)


def log_reports(loggers: Sequence[Logger], reports: dict[str, dict]) -> None:
    """Nested reports (vocabulary, parameters) into the wandb run summary, one key each."""
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            lg.experiment.summary.update(reports)
