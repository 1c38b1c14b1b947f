"""What a sweep prints (one line per trial) and leaves in its directory (the best trial)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml
from optuna import Study
from optuna.trial import FrozenTrial, TrialState

from tokentune.atomic import write_atomic
from tokentune.errors import UserError

SUMMARY = "optimization_results.yaml"  # the name hydra-optuna-sweeper uses


def started(study: Study, url: str, metric: str, sampler: str, n_trials: int) -> None:
    print(f"optuna: study '{study.study_name}' in {url}: {study.direction.name.lower()} {metric} "
          f"with {sampler}, {len(_finished(study))} of {n_trials} trials done", flush=True)


def told(study: Study, number: int, params: dict, value: Optional[float], error: Optional[str],
         metric: str, n_trials: int) -> None:
    """trial 3 (4/20 done): val/accuracy=0.8123 | optimizer.lr=0.0001234 finetune.r=8 | best ..."""
    result = f"{metric}={value:.4f}" if error is None else f"FAILED ({error})"
    best = best_trial(study)
    best_text = f"best {best.value:.4f} (trial {best.number})" if best else "no best yet"
    print(f"optuna: trial {number} ({len(_finished(study))}/{n_trials} done): {result} | "
          f"{_params(params)} | {best_text}", flush=True)


def summarize(study: Study, url: str, metric: str, n_trials: int, sweep_dir: Path) -> None:
    """Write SUMMARY into the sweep dir; a study where no trial completed is an error."""
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    summary: dict[str, Any] = {"study_name": study.study_name, "storage": url,
                               "direction": study.direction.name.lower(), "metric": metric,
                               "n_trials": n_trials, "trials": states}
    best = best_trial(study)
    if best is not None:
        summary.update(best_trial=best.number, best_value=best.value, best_params=best.params,
                       best_run_dir=best.user_attrs.get("run_dir"))
    path = sweep_dir / SUMMARY
    write_atomic(path, yaml.safe_dump(summary, sort_keys=False))
    if best is None:
        failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        first = failed[0].user_attrs.get("error", "its worker stopped") if failed else "none ran"
        raise UserError(f"no trial of study '{study.study_name}' completed; the first failure: "
                        f"{first}")
    print(f"optuna: best {metric}={best.value:.4f} in trial {best.number} "
          f"({_params(best.params)}); summary in {path}", flush=True)
    running = states.get("running", 0)
    if running:  # other workers' trials, or a killed worker's that is not yet past its grace
        print(f"optuna: {running} trial(s) still running count toward n_trials: other workers' "
              f"or a stopped worker's, failed once their heartbeat is older than the grace "
              f"period", flush=True)


def best_trial(study: Study) -> Optional[FrozenTrial]:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return study.best_trial if complete else None


def _finished(study: Study) -> list:
    return study.get_trials(deepcopy=False,
                            states=(TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED))


def _params(params: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in params.items())
