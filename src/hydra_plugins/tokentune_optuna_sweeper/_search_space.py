"""The search space: `hydra.sweeper.params` checked and turned into Optuna distributions.

    optimizer.lr:     {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
    finetune.r:       {type: int, low: 4, high: 32, step: 4}
    finetune.dropout: {type: categorical, choices: [0.0, 0.1]}
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)

from tokentune.errors import ConfigError

FIELDS = {
    "float": {"type", "low", "high", "log", "step"},
    "int": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}
_PLAIN = re.compile(r"[A-Za-z_][\w\-./]*")
_LITERALS = {"true", "false", "null", "nan", "inf"}  # Hydra would read these unquoted as non-strings


def parse_space(params: Mapping[str, Any]) -> dict[str, BaseDistribution]:
    if not params:
        raise ConfigError("hydra.sweeper.params", "no parameters to search; add e.g. "
                          "optimizer.lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}")
    return {name: _distribution(f"hydra.sweeper.params.{name}", spec)
            for name, spec in params.items()}


def _distribution(key: str, spec: Any) -> BaseDistribution:
    if not isinstance(spec, Mapping):
        raise ConfigError(key, f"{spec!r} is not a mapping such as {{type: float, low: 0.1, high: 1}}")
    kind = spec.get("type")
    if kind not in FIELDS:
        raise ConfigError(key, f"type {kind!r} is not float, int or categorical")
    unknown = sorted(set(spec) - FIELDS[kind])
    if unknown:
        raise ConfigError(key, f"unknown field {unknown[0]!r} for type {kind}; "
                               f"the fields are {', '.join(sorted(FIELDS[kind]))}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ConfigError(key, "choices: give a non-empty list of values")
        for choice in choices:
            if not (choice is None or isinstance(choice, (bool, int, float, str))):
                raise ConfigError(key, f"choice {choice!r} is not a number, string, bool or null")
        return CategoricalDistribution(list(choices))
    number = float if kind == "float" else int
    low, high = _number(key, spec, "low", number), _number(key, spec, "high", number)
    if low >= high:
        raise ConfigError(key, f"low ({low}) must be below high ({high})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(key, f"log: {log!r} is not true or false")
    step = _number(key, spec, "step", number) if spec.get("step") is not None else None
    if step is not None and step <= 0:
        raise ConfigError(key, f"step ({step}) must be positive")
    if log and step is not None:
        raise ConfigError(key, "log and step cannot be combined")
    if log and low <= 0:
        raise ConfigError(key, f"a log scale needs low > 0, got {low}")
    if kind == "float":
        return FloatDistribution(low, high, log=log, step=step)
    return IntDistribution(low, high, log=log, step=step or 1)


def _number(key: str, spec: Mapping[str, Any], field: str, number: type) -> Any:
    value = spec.get(field)
    if value is None:
        raise ConfigError(key, f"{field}: missing")
    if isinstance(value, str) and number is float:
        try:  # YAML 1.1 reads `1e-5` (no dot) as a string
            value = float(value)
        except ValueError:
            pass
    ok = isinstance(value, int) if number is int else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        raise ConfigError(key, f"{field}: {value!r} is not {'an int' if number is int else 'a number'}")
    return number(value)


def edge_values(dist: BaseDistribution) -> list[Any]:
    """The values that must compose for every trial to compose: both ends, every choice."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    return [dist.low, dist.high]


def grid_space(space: Mapping[str, BaseDistribution]) -> dict[str, list[Any]]:
    grid = {}
    for name, dist in space.items():
        if not isinstance(dist, CategoricalDistribution):
            raise ConfigError(f"hydra.sweeper.params.{name}",
                              "the grid sampler takes type: categorical only; list the values")
        grid[name] = list(dist.choices)
    return grid


def as_override(name: str, value: Any) -> str:
    """A sampled value as a Hydra command-line override."""
    if value is None:
        return f"{name}=null"
    if isinstance(value, bool):
        return f"{name}={str(value).lower()}"
    if isinstance(value, str) and not (_PLAIN.fullmatch(value) and value.lower() not in _LITERALS):
        quoted = value.replace("'", "\\'")
        return f"{name}='{quoted}'"
    return f"{name}={value!r}" if isinstance(value, float) else f"{name}={value}"
