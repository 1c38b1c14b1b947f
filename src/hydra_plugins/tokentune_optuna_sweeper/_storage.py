"""Where the study lives: a database URL opened as Optuna's RDBStorage, with one-line errors."""
from __future__ import annotations

import re
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Sequence

from optuna.storages import RDBStorage
from sqlalchemy.exc import SQLAlchemyError

from tokentune.errors import ConfigError

KEY = "hydra.sweeper.storage"


def default_url(sweep_dir: Path) -> str:
    return f"sqlite:///{sweep_dir / 'optuna.db'}"


def masked(text: str) -> str:
    """`scheme://user:password@host` → `scheme://user:***@host` (the URL is printed and saved)."""
    return re.sub(r"(://[^:/@\s]*:)[^@/\s]*@", r"\1***@", text)


def open_storage(url: str, heartbeat_interval: int, grace_period: Optional[int]) -> RDBStorage:
    # Workers started together on an empty database race to create Optuna's tables; the loser
    # fails with "already exists" / a unique violation (optuna#1092). By then the tables exist.
    attempts = 0
    while True:
        try:
            return RDBStorage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                              engine_kwargs=_engine_kwargs(url))
        except SQLAlchemyError as err:
            attempts += 1
            if attempts == 3 or not _lost_creation_race(err):
                raise _unreachable(url, err) from None
            time.sleep(1.0)
        except ImportError as err:  # SQLAlchemy imports the URL's driver on first connect
            raise ConfigError(KEY, f"cannot open {masked(url)} ({err}); install the driver the URL "
                                   "names, e.g. pip install 'psycopg[binary]' for "
                                   "postgresql+psycopg://") from None


def _engine_kwargs(url: str) -> dict:
    # SQLite lets one writer in at a time and gives up after 5 s by default; the heartbeat thread,
    # the sweep's own tells and other workers on the same file all write, so wait longer.
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


def _lost_creation_race(err: SQLAlchemyError) -> bool:
    text = str(err).lower()
    return "already exists" in text or "duplicate key" in text or "unique constraint" in text


def _unreachable(url: str, err: SQLAlchemyError) -> ConfigError:
    cause = getattr(err, "orig", None) or err  # the driver's own message, without SQL and links
    reason = masked(str(cause).strip().splitlines()[0])
    advice = ("check that its folder exists and is writable" if url.startswith("sqlite") else
              "check that the database server is running and reachable and that the URL is "
              "right, e.g. postgresql+psycopg://user:password@host:5432/dbname")
    return ConfigError(KEY, f"cannot open {masked(url)} ({reason}); {advice}")


@contextmanager
def heartbeats(storage: RDBStorage, trial_ids: Sequence[int]) -> Iterator[None]:
    """Record the trials' heartbeats while their jobs run.

    Optuna beats only inside `study.optimize`; we ask and tell around Hydra's launcher, so we beat
    ourselves. A worker that is killed stops beating, and `fail_stale_trials` in any later worker
    marks its trials failed after the grace period instead of leaving them RUNNING for ever.
    """
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                for trial_id in trial_ids:
                    storage.record_heartbeat(trial_id)
            except SQLAlchemyError as err:
                # one missed beat is harmless (the grace period spans several); a thread that
                # died here would let the running trial be failed as stale under its own run
                warnings.warn(f"optuna heartbeat not recorded, retrying: {masked(str(err))[:200]}")
            if stop.wait(storage.get_heartbeat_interval()):
                return

    thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
