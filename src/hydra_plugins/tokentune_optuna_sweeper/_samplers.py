"""`hydra.sweeper.sampler`: tpe | random | grid, as Optuna samplers."""
from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence, Tuple

import optuna
from optuna.distributions import BaseDistribution

from ._search_space import grid_space

SAMPLERS = ("tpe", "random", "grid")


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler without its `study.stop()` call once the grid is used up.

    That call ends `study.optimize`, and raises RuntimeError under ask-and-tell after the trial is
    stored; the sweeper stops by itself, its trial count capped at the grid's size.
    """

    def after_trial(self, study: optuna.Study, trial: Any, state: Any,
                    values: Optional[Sequence[float]]) -> None:
        return None


def make_sampler(name: str, seed: Optional[int], space: Mapping[str, BaseDistribution]
                 ) -> Tuple[optuna.samplers.BaseSampler, Optional[int]]:
    """The sampler, and how many distinct trials it can propose (the grid's size; None: any)."""
    if name == "grid":
        grid = grid_space(space)
        return _AskTellGridSampler(grid, seed=seed), math.prod(len(v) for v in grid.values())
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed), None
    # constant liar: trials still running (this batch, other workers) count as bad results,
    # so parallel trials are not all drawn next to the same best point
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True), None
