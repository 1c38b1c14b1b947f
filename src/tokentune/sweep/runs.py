"""The runs under a sweep folder: finished ones with what they were launched with, the rest with
the reason they cannot be read (killed mid-run, truncated results.json)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tokentune.run.results import NotRunResults, RunResults


@dataclass
class Run:
    dir: Path
    results: RunResults
    overrides: dict[str, str]  # the command-line overrides of this job (.hydra/overrides.yaml)
    defaults: dict[str, str]  # everything else: config-group choices and config.yaml values

    def setting(self, key: str) -> str:
        return self.overrides.get(key, self.defaults.get(key, "-"))

    def task_splits(self) -> list[str]:
        """The run's task splits, in its config's order (from config.yaml's task.splits)."""
        return list(dict.fromkeys(k.split(".")[2] for k in self.defaults if k.startswith("task.splits.")))


@dataclass
class Skipped:
    dir: Path
    reason: str


def find_runs(root: Path) -> tuple[list[Run], list[Skipped]]:
    """Every run folder under `root` (one with `.hydra/` or `results.json`), in job order."""
    dirs = {p.parent for p in root.rglob(".hydra") if p.is_dir()}
    dirs |= {p.parent for p in root.rglob("results.json")}
    runs: list[Run] = []
    skipped: list[Skipped] = []
    for d in sorted(dirs, key=_natural):
        loaded = _load(d)
        (runs if isinstance(loaded, Run) else skipped).append(loaded)
    return runs, skipped


def _natural(path: Path) -> list:
    # job folders are numbered: 10-... comes after 9-...
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def _load(d: Path) -> Run | Skipped:
    path = d / "results.json"
    if not path.is_file():
        return Skipped(d, "no results.json (unfinished or killed)")
    try:
        results = RunResults.from_json(json.loads(path.read_text(encoding="utf-8")))
    except NotRunResults as err:
        return Skipped(d, f"results.json {err}")
    except (ValueError, UnicodeDecodeError):
        return Skipped(d, "results.json is not valid JSON (truncated?)")
    try:
        overrides = dict(_split(o) for o in _yaml(d / ".hydra" / "overrides.yaml") or [])
        choices = ((_yaml(d / ".hydra" / "hydra.yaml") or {}).get("hydra") or {}) \
            .get("runtime", {}).get("choices") or {}
        config = _flatten(_yaml(d / "config.yaml") or {})
    except yaml.YAMLError:
        return Skipped(d, "unreadable config.yaml or .hydra/ files")
    return Run(d, results, overrides, {**config, **{k: str(v) for k, v in choices.items()}})


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None


def _split(override: str) -> tuple[str, str]:
    """`+key=value` / `key=value` / `~key` → (key, value) as Hydra recorded the job's value."""
    key, _, value = override.partition("=")
    if override.startswith("~"):
        value = "deleted"
    return key.lstrip("+~"), value


def _flatten(node: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in node.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = str(v)
    return out
