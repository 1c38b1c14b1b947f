"""Run a paper-style study: its grid as one Hydra multirun, then one table + plot of the results.

usage (repository root):
    python experiments/run.py peft_glue                        # = make experiment name=peft_glue
    python experiments/run.py peft_glue --set seed=1 --set task=sst2 trainer.max_epochs=1
    python experiments/run.py peft_glue --collect outputs/experiments/peft_glue/<time>   # table only

A study is `experiments/<name>/study.yaml`:
    title: ...
    experiment: <name>          # the conf/experiment/ overlay every run starts from
    grid: {finetune: [full, lora], task: [sst2, rte], seed: [1, 2, 3]}   # the swept axes
    table: {rows: finetune, columns: task, info: [parameters.trainable]}
Each cell is the mean ± std over the remaining axes (seeds) of the run's own validation metric
(its task.monitor); `Avg.` averages a row's cells. Writes results.md, results.json and results.png
into experiments/<name>/ (or --out) with the device, package versions and commit.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INFO_LABELS = {"parameters.trainable": "trainable params", "parameters.total": "total params",
               "vocabulary.vocab_size": "vocab size"}
sys.path.insert(0, str(ROOT / "src"))

from tokentune.atomic import write_atomic  # noqa: E402
from tokentune.errors import UserError  # noqa: E402
from tokentune.run.provenance import environment, markdown_lines  # noqa: E402
from tokentune.run.results import RunResults  # noqa: E402
from tokentune.sweep.runs import Run, find_runs  # noqa: E402
from tokentune.sweep.table import Stat, metric_value  # noqa: E402


def load_study(name: str) -> dict:
    path = ROOT / "experiments" / name / "study.yaml"
    if not path.is_file():
        studies = sorted(p.parent.name for p in (ROOT / "experiments").glob("*/study.yaml"))
        raise UserError(f"no study '{name}' ({path} not found); studies: {', '.join(studies)}")
    study = yaml.safe_load(path.read_text())
    for key in ("title", "grid", "table"):
        if key not in study:
            raise UserError(f"{path}: missing '{key}'")
    for axis in ("rows", "columns"):
        if study["table"].get(axis) not in study["grid"]:
            raise UserError(f"{path}: table.{axis} must be one of the grid's keys {list(study['grid'])}")
    return study


def apply_sets(study: dict, sets: list[str]) -> None:
    """`--set AXIS=v1,v2`: replace one grid axis's values (the table follows the new grid)."""
    for item in sets:
        key, sep, values = item.partition("=")
        if not sep or key not in study["grid"]:
            raise UserError(f"--set {item}: give AXIS=v1,v2 with AXIS one of {list(study['grid'])}")
        study["grid"][key] = values.split(",")


def command(study: dict, overrides: list[str], sweep_dir: Path) -> list[str]:
    grid = [f"{k}={','.join(map(str, v))}" for k, v in study["grid"].items()]
    base = [f"experiment={study['experiment']}"] if study.get("experiment") else []
    return [sys.executable, str(ROOT / "train.py"), "-m", *base, *grid,
            f"hydra.sweep.dir={sweep_dir}", *overrides]


def score(run: Run) -> float | None:
    return metric_value(run.results, f"validation/{run.setting('task.monitor')}")


def dotted(results: RunResults, path: str):
    """A value of results.json by its dotted path (parameters.trainable); None where absent."""
    value = results.to_json()
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def pivot(study: dict, runs: list[Run]) -> dict:
    rows_key, cols_key = study["table"]["rows"], study["table"]["columns"]
    order = {k: [str(v) for v in vals] for k, vals in study["grid"].items()}
    rows_seen = [v for v in order[rows_key] if any(r.setting(rows_key) == v for r in runs)]
    cols_seen = [v for v in order[cols_key] if any(r.setting(cols_key) == v for r in runs)]
    table = {"rows_key": rows_key, "columns_key": cols_key, "columns": cols_seen, "rows": []}
    for row in rows_seen:
        members = [r for r in runs if r.setting(rows_key) == row]
        cells = {}
        for col in cols_seen:
            cell = [r for r in members if r.setting(cols_key) == col]
            values = [v for r in cell if (v := score(r)) is not None]
            if values:
                s = Stat.of(values)
                cells[col] = {"mean": s.mean, "std": s.std, "n": len(values),
                              "metric": cell[0].setting("task.monitor")}
        info = {}
        for path in study["table"].get("info", []):
            found = [v for r in members if isinstance(v := dotted(r.results, path), (int, float))]
            info[path] = statistics.fmean(found) if found else None
        avg = statistics.fmean(c["mean"] for c in cells.values()) if cells else None
        table["rows"].append({"value": row, "cells": cells, "info": info, "average": avg})
    return table


def to_markdown(study: dict, table: dict, env: dict, extra: dict) -> str:
    info = study["table"].get("info", [])
    head = [table["rows_key"], *(INFO_LABELS.get(p, p) for p in info), *table["columns"], "Avg."]
    lines = [f"# {study['title']}", "",
             *markdown_lines(env),
             f"- command: `{extra['command']}`", f"- runs: {extra['runs']} finished, "
             f"{extra['skipped']} skipped; wall time {extra['wall_time_s']:.0f} s", "",
             "Each cell: the task's validation metric (its `task.monitor`), mean ± std over seeds.", "",
             "| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for row in table["rows"]:
        cells = [row["value"]]
        cells += ["" if row["info"][p] is None else f"{row['info'][p]:,.0f}" for p in info]
        for col in table["columns"]:
            c = row["cells"].get(col)
            cells.append("" if c is None else f"{100 * c['mean']:.1f}"
                         + ("" if c["std"] is None else f" ± {100 * c['std']:.1f}"))
        cells.append("" if row["average"] is None else f"{100 * row['average']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    metrics = sorted({c["metric"] for r in table["rows"] for c in r["cells"].values()})
    lines += ["", f"Metrics (× 100): {', '.join(metrics)}."]
    return "\n".join(lines) + "\n"


def plot(table: dict, path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols, rows = table["columns"], table["rows"]
    width = 0.8 / max(1, len(rows))
    fig = Figure(figsize=(max(6.0, 1.6 * len(cols) + 2), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for i, row in enumerate(rows):
        xs = [j + i * width for j, c in enumerate(cols) if c in row["cells"]]
        cells = [row["cells"][c] for c in cols if c in row["cells"]]
        ax.bar(xs, [100 * c["mean"] for c in cells], width, yerr=[100 * (c["std"] or 0) for c in cells],
               capsize=3, label=row["value"])
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(cols))], cols)
    ax.set_ylabel("validation metric × 100 (mean ± std over seeds)")
    ax.set_title(title, fontsize="medium", wrap=True)
    ax.legend(title=table["rows_key"], fontsize="small")
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="Run a study's grid and write its table.")
    p.add_argument("name")
    p.add_argument("--set", action="append", default=[], metavar="AXIS=v1,v2",
                   help="replace a grid axis's values (e.g. --set seed=1)")
    p.add_argument("--out", type=Path, help="where results.* go (default: experiments/<name>/)")
    p.add_argument("--sweep-dir", type=Path, help="the multirun folder (default: outputs/experiments/<name>/<time>)")
    p.add_argument("--collect", type=Path, metavar="SWEEP_DIR", help="only tabulate an existing sweep")
    p.add_argument("overrides", nargs="*", help="train.py overrides applied to every run")
    args = p.parse_intermixed_args(argv)
    try:
        study = load_study(args.name)
        apply_sets(study, args.set)
        out = args.out or ROOT / "experiments" / args.name
        start = time.perf_counter()
        if args.collect:
            sweep, cmd = args.collect, "(collected) " + str(args.collect)
        else:
            sweep = args.sweep_dir or ROOT / "outputs" / "experiments" / args.name / time.strftime("%Y-%m-%d_%H-%M-%S")
            argv_run = command(study, args.overrides, sweep)
            cmd = " ".join(["python experiments/run.py", args.name, *(f"--set {s}" for s in args.set),
                            *args.overrides])
            print("study:", " ".join(argv_run[1:]), flush=True)
            if subprocess.run(argv_run, cwd=ROOT).returncode != 0:
                print("study: some runs failed; tabulating the finished ones", file=sys.stderr)
        runs, skipped = find_runs(sweep)
        for s in skipped:
            print(f"study: skipped {s.dir.name}: {s.reason}", file=sys.stderr)
        if not runs:
            raise UserError(f"no finished runs in {sweep}")
        table = pivot(study, runs)
        extra = {"command": cmd, "runs": len(runs), "skipped": len(skipped),
                 "wall_time_s": time.perf_counter() - start}
        env = environment()
        md = to_markdown(study, table, env, extra)
        write_atomic(out / "results.md", md)
        write_atomic(out / "results.json", json.dumps(
            {"study": study, "environment": env, **extra, "table": table}, indent=2) + "\n")
        plot(table, out / "results.png", study["title"])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(md, end="")
    return table


if __name__ == "__main__":
    main()
