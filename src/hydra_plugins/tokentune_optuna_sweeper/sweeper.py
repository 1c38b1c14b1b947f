"""`hydra/sweeper=tokentune_optuna`: ask Optuna for trials, launch them, tell it their metric.

The loop: fail trials whose worker died → count the study's trials → ask a batch → launch it
through Hydra's launcher (basic, joblib, submitit ...) → tell Optuna each job's validation metric,
or FAIL. `n_trials` is the study's total, so a re-run resumes and several workers share the work.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from tokentune.errors import ConfigError, UserError, check

from ._trial import SweepTask, first_line
from .config import OptunaSweeperConf


class OptunaSweeper(Sweeper):
    def __init__(self, params: Any, **settings: Any) -> None:
        if isinstance(params, DictConfig):
            params = OmegaConf.to_container(params, resolve=True)
        self.settings = OptunaSweeperConf(params=params, **settings)
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=SweepTask(task_function))

    def sweep(self, arguments: List[str]) -> None:
        from optuna.exceptions import ExperimentalWarning

        try:
            with warnings.catch_warnings():
                # heartbeats and fail_stale_trials are marked experimental, and Optuna expects
                # heartbeats inside study.optimize; _storage.heartbeats says why we ask and tell
                warnings.filterwarnings("ignore", category=ExperimentalWarning)
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
                self._sweep(arguments)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    def _sweep(self, arguments: List[str]) -> None:
        import optuna

        from tokentune.config import monitored, stage
        from tokentune.model.metrics import higher_is_better

        from . import _report
        from ._samplers import make_sampler
        from ._storage import default_url, masked, open_storage

        s = self.settings
        _check_settings(s)
        fixed = _fixed_overrides(arguments)
        space = self._search_space(fixed)
        monitor = OmegaConf.select(self.config, "task.monitor")
        check(monitor is not None, "task.monitor", "the sweep's objective; this config has none")
        split, name = monitored(monitor, OmegaConf.select(self.config, "task.splits") or {})
        metric = f"{stage(split)}/{name}"
        direction = s.direction or ("maximize" if higher_is_better(name) else "minimize")
        sampler, grid_size = make_sampler(s.sampler, s.seed, space)
        n_trials = min(s.n_trials, grid_size) if grid_size else s.n_trials

        sweep_dir = Path(str(self.config.hydra.sweep.dir)).resolve()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        url = s.storage or default_url(sweep_dir)
        storage = open_storage(url, s.heartbeat_interval, s.grace_period)
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress lines say more
        study = optuna.create_study(study_name=s.study_name, storage=storage, sampler=sampler,
                                    direction=direction, load_if_exists=True)
        stored = study.direction.name.lower()
        check(stored == direction, "hydra.sweeper.direction",
              f"study '{s.study_name}' in {masked(url)} was created to {stored}, not {direction}; "
              f"choose another study_name or storage")
        _report.started(study, masked(url), metric, s.sampler, n_trials)
        while self._run_batch(study, storage, space, list(fixed.values()), metric, n_trials):
            pass
        _report.summarize(study, masked(url), metric, n_trials, sweep_dir)

    def _search_space(self, fixed: Dict[str, str]) -> dict:
        """The params not set on the command line, each checked to compose at its ends."""
        from ._search_space import as_override, edge_values, parse_space

        params = self.settings.params
        for key in fixed.keys() & params.keys():
            print(f"optuna: {key} is set on the command line: not searched", flush=True)
        space = parse_space({k: v for k, v in params.items() if k not in fixed})
        for name, dist in space.items():
            for value in edge_values(dist):
                override = as_override(name, value)
                try:
                    self.validate_batch_is_legal([[*fixed.values(), override]])
                except (HydraException, OmegaConfBaseException) as err:
                    cause = err.__cause__ or err
                    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
                        raise ConfigError(f"hydra.sweeper.params.{name}",
                                          "not a key of the config; check its spelling") from None
                    raise ConfigError(f"hydra.sweeper.params.{name}",
                                      f"{override} does not fit the config: "
                                      f"{first_line(cause)}") from None
        return space

    def _run_batch(self, study: Any, storage: Any, space: dict, fixed: List[str], metric: str,
                   n_trials: int) -> bool:
        """Ask, launch and tell up to n_jobs trials; False once the study has n_trials."""
        import optuna
        from optuna.trial import TrialState

        from . import _report
        from ._search_space import as_override
        from ._storage import heartbeats
        from ._trial import outcome

        optuna.storages.fail_stale_trials(study)
        # running trials count: this batch's and other workers' are under way, and a dead
        # worker's are failed above once their heartbeat is older than the grace period
        counted = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED, TrialState.RUNNING)
        todo = n_trials - len(study.get_trials(deepcopy=False, states=counted))
        if todo <= 0:
            return False
        trials = [study.ask(space) for _ in range(min(self.settings.n_jobs, todo))]
        jobs = [fixed + [as_override(k, v) for k, v in t.params.items()]
                + [f"hydra.sweep.subdir=trial_{t.number}"] for t in trials]
        # `_trial_id` is the storage's key for a trial; Optuna has no public accessor for it
        with heartbeats(storage, [t._trial_id for t in trials]):
            returns = self.launcher.launch(jobs, initial_job_idx=trials[0].number)
        for trial, ret in zip(trials, returns):
            value, error, run_dir = outcome(ret, metric)
            if run_dir:
                trial.set_user_attr("run_dir", run_dir)
            if error is None:
                study.tell(trial, value)
            else:
                trial.set_user_attr("error", error)
                study.tell(trial, state=TrialState.FAIL)
            _report.told(study, trial.number, trial.params, value, error, metric, n_trials)
        return True


def _check_settings(s: OptunaSweeperConf) -> None:
    from ._samplers import SAMPLERS

    check(bool(s.study_name), "hydra.sweeper.study_name", "give the study a name")
    check(s.direction in (None, "minimize", "maximize"), "hydra.sweeper.direction",
          f"'{s.direction}' is not minimize or maximize (or null: from task.monitor)")
    check(s.sampler in SAMPLERS, "hydra.sweeper.sampler", f"'{s.sampler}' is not one of {SAMPLERS}")
    check(s.n_trials >= 1, "hydra.sweeper.n_trials", f"must be at least 1, got {s.n_trials}")
    check(s.n_jobs >= 1, "hydra.sweeper.n_jobs", f"must be at least 1, got {s.n_jobs}")
    check(s.heartbeat_interval >= 1, "hydra.sweeper.heartbeat_interval", "must be at least 1 s")
    check(s.grace_period is None or s.grace_period > s.heartbeat_interval,
          "hydra.sweeper.grace_period", "must be longer than heartbeat_interval (or null)")


def _fixed_overrides(arguments: List[str]) -> Dict[str, str]:
    """The command line's overrides by key: every trial gets them, the sweeper does the search."""
    fixed = {}
    for override in OverridesParser.create().parse_overrides(arguments):
        if override.is_sweep_override():
            raise ConfigError(override.key_or_group, "a sweep on the command line; with "
                              "hydra/sweeper=tokentune_optuna put it in hydra.sweeper.params")
        fixed[override.key_or_group] = override.input_line
    return fixed
