"""The sweeper's schema, registered as `hydra/sweeper: tokentune_optuna`.

No `from __future__ import annotations` here: Hydra's plugin scan runs this module before it is
in sys.modules, where dataclasses would look its string annotations up.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.tokentune_optuna_sweeper.sweeper.OptunaSweeper"
    study_name: str = "tokentune"
    # any SQLAlchemy URL (postgresql+psycopg://user:pw@host/db for several machines);
    # None: sqlite:///<hydra.sweep.dir>/optuna.db
    storage: Optional[str] = None
    direction: Optional[str] = None  # minimize | maximize; None: from the task's monitored metric
    n_trials: int = 20  # for the whole study: earlier runs and other workers count
    n_jobs: int = 1  # trials handed to the launcher at once (joblib/submitit run them in parallel)
    sampler: str = "tpe"  # tpe | random | grid (grid: categorical params only)
    seed: Optional[int] = None  # None: each worker draws its own points
    # A worker records a heartbeat for its running trials; a trial silent for grace_period seconds
    # (its worker was killed) is marked failed by the next worker that looks.
    heartbeat_interval: int = 60
    grace_period: Optional[int] = None  # None: 2 × heartbeat_interval
    # config key → {type: float|int, low, high, log, step} or {type: categorical, choices: [...]}
    params: Dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name="tokentune_optuna",
                             node=OptunaSweeperConf, provider="tokentune")
