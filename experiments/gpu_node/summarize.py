"""What an offline GPU node's run has measured so far: summary.json + summary.md in OUT.

usage: python experiments/gpu_node/summarize.py WORK OUT   (run.sh calls it after each step)
Reads WORK/status/ (each step's exit status and wall time, the node's device) and the result files
under WORK/results/; the numbers come straight from those files. Standard library,
tokentune.atomic and tokentune.run.results only: it runs on the node before anything else is
known to work.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tokentune.atomic import write_atomic
from tokentune.run.results import RunResults

STEPS = ("bench", "fast", "accuracy")
ACCURACY_RUNS = ("full", "adapter", "lora", "prefix", "bpe32k")


def read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run_summary(run: Path) -> dict | None:
    raw = read(run / "results.json")
    if raw is None:
        return None
    r = RunResults.from_json(raw)
    predictions = run / "SST2.tsv"
    return {"validation": r.validation, "wall_time_s": r.wall_time_s, "steps": r.steps,
            "trainable": r.parameters["trainable"], "vocab_size": r.vocabulary.get("vocab_size"),
            "test_predictions": (sum(1 for _ in predictions.open()) - 1) if predictions.is_file() else None}


def summary(work: Path) -> dict:
    res = work / "results"
    out = {"node": read(work / "status" / "node.json"),
           "steps": {s: read(work / "status" / f"{s}.json") for s in STEPS}}
    bench, memory = read(res / "bench" / "bench.json"), read(res / "bench" / "memory.json")
    if bench:
        out["throughput"] = {k: v.get("samples_per_s", v.get("error")) for k, v in bench["results"].items()}
        out["throughput_ratios"] = bench["ratios"]
    if memory:
        out["peak_memory_gb"] = {k: v.get("peak_memory_gb", v.get("error")) for k, v in memory["results"].items()}
    if (fast := run_summary(res / "fast")) is not None:
        out["fast"] = {**fast, "command_s": (out["steps"]["fast"] or {}).get("seconds")}
    out["accuracy"] = {m: run_summary(res / "accuracy" / m) for m in ACCURACY_RUNS}
    # runs that run.sh repeated eager after their compiled process died of a signal
    out["ran_eager"] = {r["run"]: r["signal"] for p in sorted((work / "status").glob("eager-*.json"))
                        if (r := read(p)) is not None}
    return out


def markdown(s: dict) -> str:
    lines = [f"# GPU node run: {(s['node'] or {}).get('device', '?')}", "",
             "| step | exit | seconds | limit |", "| --- | ---: | ---: | ---: |"]
    for name, st in s["steps"].items():
        lines.append(f"| {name} | {st['rc']} | {st['seconds']:.1f} | {st['limit']} |" if st else f"| {name} | not run | | |")
    for name, v in s.get("throughput", {}).items():
        lines.append(f"- throughput {name}: " + (f"{v:,.0f} samples/s" if isinstance(v, float) else str(v)))
    for name, v in s.get("throughput_ratios", {}).items():
        lines.append(f"- tokentune / {name}: {v:.2f}x")
    for name, v in s.get("peak_memory_gb", {}).items():
        lines.append(f"- peak memory {name}: " + (f"{v:.2f} GB" if isinstance(v, float) else str(v)))
    if "fast" in s:
        lines.append(f"- fast: {s['fast']['validation']} in {s['fast']['command_s']} s (whole command)")
    for name, r in s["accuracy"].items():
        lines.append(f"- accuracy {name}: " + ("no results" if r is None else
                     f"{r['validation']}, {r['test_predictions']} test predictions, {r['wall_time_s']:.0f} s"))
    for name, sig in s.get("ran_eager", {}).items():
        lines.append(f"- {name} ran eager (model.compile=null): its compiled run died of {sig}")
    return "\n".join(lines) + "\n"


def main(work: str, out: str) -> None:
    s = summary(Path(work))
    write_atomic(Path(out) / "summary.json", json.dumps(s, indent=2) + "\n")
    write_atomic(Path(out) / "summary.md", markdown(s))


if __name__ == "__main__":
    main(*sys.argv[1:])
