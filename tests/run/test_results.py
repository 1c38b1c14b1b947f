"""results.json as RunResults: the committed runs of every version load, a file that is not a
finished run's names what it lacks, and a non-finite metric survives the round trip."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import ROOT
from tokentune.run.results import NotRunResults, RunResults


def committed_runs() -> dict[str, dict]:
    """Every run's results.json object committed under experiments/: a whole file, or a study's
    "runs" (those ingested from the GPU node)."""
    found = {}
    for path in sorted((ROOT / "experiments").rglob("results.json")):
        obj = json.loads(path.read_text())
        name = str(path.relative_to(ROOT))
        if "run_dir" in obj:
            found[name] = obj
        for run, r in (obj.get("runs") or {}).items() if isinstance(obj.get("runs"), dict) else ():
            if "run_dir" in r:
                found[f"{name}:{run}"] = r
    return found


COMMITTED = committed_runs()


def test_the_committed_runs_are_there():
    assert {"experiments/demo_cpu/results.json", "experiments/minilm_sst2/results.json:full",
            "experiments/peft_glue/gpu_sst2/results.json:adapter"} <= set(COMMITTED)


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_a_committed_run_loads_with_what_it_holds(name):
    raw = COMMITTED[name]
    results = RunResults.from_json(raw)
    assert {k: v for k, v in results.to_json().items() if k in raw} == raw
    # keys a later version added read as their defaults (demo_cpu predates test_predictions)
    later = set(results.to_json()) - set(raw)
    assert all(results.to_json()[k] in ({}, [], None) for k in later), later


def test_a_file_that_is_not_a_runs_names_what_it_lacks():
    whole = COMMITTED["experiments/demo_cpu/results.json"]
    with pytest.raises(NotRunResults) as err:
        RunResults.from_json({k: v for k, v in whole.items() if k not in ("steps", "wall_time_s")})
    assert str(err.value) == "lacks steps, wall_time_s"
    with pytest.raises(NotRunResults) as err:
        RunResults.from_json([whole])
    assert str(err.value) == "is a JSON list, not an object"


def test_a_non_finite_metric_is_null_and_named_and_reads_back(tmp_path):
    results = RunResults.from_json(COMMITTED["experiments/demo_cpu/results.json"])
    results.validation = {"val/accuracy": 0.5, "val/loss": math.nan}
    results.write(tmp_path / "results.json")
    raw = json.loads((tmp_path / "results.json").read_text())
    assert raw["validation"] == {"val/accuracy": 0.5, "val/loss": None}
    assert raw["non_finite"] == {"validation/val/loss": "nan"}
    again = RunResults.load(tmp_path / "results.json")
    assert again.validation["val/loss"] is None and again.non_finite == {"validation/val/loss": "nan"}
    again.write(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == (tmp_path / "results.json").read_text()
