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

A paper's table is a study with `paper` in place of `table` (experiments/lora_paper_glue/):
    paper: {source: ..., column: ..., measured_on: ...,
            rows: [{task: cola, label: CoLA, metric: validation/mcc, value: 63.4}, ...],
            info: [parameters.trainable]}
    select: optimizer.lr        # optional: a grid axis chosen per task, by its mean score
    submission: glue.zip        # optional: the GLUE server's zip of the chosen runs
    notes: [...]                # where the runs differ from the paper's
One row per paper number: ours (mean ± std over seeds, × 100), the paper's, the difference, the
trainable parameters and the device-hours the task's runs took.
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
               "parameters.groups.method.trainable": "of which the method's",
               "vocabulary.vocab_size": "vocab size"}
sys.path.insert(0, str(ROOT / "src"))

from tokentune.atomic import write_atomic  # noqa: E402
from tokentune.config import monitored  # noqa: E402
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
    for key in ("title", "grid"):
        if key not in study:
            raise UserError(f"{path}: missing '{key}'")
    if ("table" in study) == ("paper" in study):
        raise UserError(f"{path}: give either 'table' (rows × columns) or 'paper' (a paper's numbers)")
    if "table" in study:
        for axis in ("rows", "columns"):
            if study["table"].get(axis) not in study["grid"]:
                raise UserError(f"{path}: table.{axis} must be one of the grid's keys {list(study['grid'])}")
    else:
        for key in ("task", study.get("select", "task")):
            if key not in study["grid"]:
                raise UserError(f"{path}: a paper study's grid needs '{key}' (it has {list(study['grid'])})")
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
    """The run's monitored validation score (task.monitor, e.g. validation_matched/accuracy)."""
    split, metric = monitored(run.setting("task.monitor"), run.task_splits())
    return metric_value(run.results, f"{split}/{metric}")


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


def same(recorded: str, value) -> bool:
    """Whether a run's recorded setting is a grid value: Hydra records the override lr=5e-5 as
    5e-05, and a number's spelling is not its value."""
    try:
        return float(recorded) == float(value)
    except (TypeError, ValueError):  # a word, or no value (None)
        return recorded == str(value)


def device_hours(run: Run) -> float:
    """The run's wall time × the devices it held (trainer.devices per node × trainer.num_nodes)."""
    def count(key: str) -> int:
        value = run.setting(key)
        return int(value) if value.isdigit() else 1  # "auto" / "-1": one, the least it held

    return run.results.wall_time_s * count("trainer.devices") * count("trainer.num_nodes") / 3600


def axis_means(study: dict, runs: list[Run]) -> dict[str, dict[str, float]]:
    """task → value of the study's `select` axis → the mean over its runs (seeds) of their
    monitored validation score; empty without `select`."""
    axis = study.get("select")
    means: dict[str, dict[str, float]] = {}
    for task in map(str, study["grid"]["task"]) if axis else ():
        for value in map(str, study["grid"][axis]):
            scores = [v for r in runs if r.setting("task") == task and same(r.setting(axis), value)
                      and (v := score(r)) is not None]
            if scores:
                means.setdefault(task, {})[value] = statistics.fmean(scores)
    return means


def choose(means: dict[str, dict[str, float]], runs: list[Run]) -> dict[str, str]:
    """Per task, the axis value of the best mean (the grid's order breaks a tie)."""
    from tokentune.model.metrics import higher_is_better

    chosen = {}
    for task, by_value in means.items():
        run = next(r for r in runs if r.setting("task") == task)
        sign = 1 if higher_is_better(monitored(run.setting("task.monitor"), run.task_splits())[1]) else -1
        chosen[task] = max(by_value, key=lambda v: sign * by_value[v])
    return chosen


def compare(study: dict, runs: list[Run]) -> dict:
    """One row per paper number of the grid's tasks: ours (× 100) beside the paper's."""
    paper, axis = study["paper"], study.get("select")
    tasks = [str(t) for t in study["grid"]["task"]]
    means = axis_means(study, runs)
    chosen = choose(means, runs)
    accelerators = {r.setting("trainer.accelerator") for r in runs}
    rows = []
    for spec in paper["rows"]:
        task = str(spec["task"])
        if task not in tasks:
            continue
        members = [r for r in runs if r.setting("task") == task]
        picked = [r for r in members if axis is None or same(r.setting(axis), chosen.get(task))]
        values = [v for r in picked if (v := metric_value(r.results, spec["metric"])) is not None]
        ours = None
        if values:
            s = Stat.of([100 * v for v in values])
            ours = {"mean": s.mean, "std": s.std, "n": len(values)}
        published = spec.get("value")
        info = {}
        for path in paper.get("info", []):
            found = [v for r in picked if isinstance(v := dotted(r.results, path), (int, float))]
            info[path] = statistics.fmean(found) if found else None
        rows.append({"task": task, "label": spec.get("label", task), "metric": spec["metric"],
                     "ours": ours, "paper": published,
                     "difference": None if ours is None or published is None else ours["mean"] - published,
                     "chosen": chosen.get(task), "info": info, "runs": len(members),
                     "device_hours": sum(device_hours(r) for r in members)})
    both = [r for r in rows if r["difference"] is not None]
    average = None
    if both:
        ours, theirs = (statistics.fmean(r["ours"]["mean"] for r in both),
                        statistics.fmean(r["paper"] for r in both))
        average = {"ours": ours, "paper": theirs, "difference": ours - theirs, "rows": len(both)}
    hours = {r.setting("task"): 0.0 for r in runs}
    for r in runs:
        hours[r.setting("task")] += device_hours(r)
    sweep = {task: {v: 100 * m for v, m in by_value.items()} for task, by_value in means.items()}
    return {"select": axis, "chosen": chosen, "sweep": sweep, "rows": rows,
            "average": average, "device_hours": sum(hours.values()),
            "hours_label": "GPU-hours" if accelerators <= {"gpu", "cuda"} else "CPU-hours (wall)"}


def compare_markdown(study: dict, table: dict, env: dict, extra: dict) -> str:
    paper, axis, info = study["paper"], table["select"], study["paper"].get("info", [])
    head = ["task", "metric", "ours (mean ± std)", "n", paper["column"], "ours − paper",
            *([f"{axis} (chosen)"] if axis else []), *(INFO_LABELS.get(p, p) for p in info),
            table["hours_label"]]
    lines = [f"# {study['title']}", "", *markdown_lines(env),
             f"- command: `{extra['command']}`",
             f"- runs: {extra['runs']} finished, {extra['skipped']} skipped; wall time "
             f"{extra['wall_time_s']:.0f} s; {table['hours_label']}: {table['device_hours']:.2f}",
             f"- paper: {paper['source']}", f"- compared: {paper['measured_on']}", "",
             "| " + " | ".join(head) + " |", "| --- | --- |" + " ---: |" * (len(head) - 2)]
    seen = set()
    for row in table["rows"]:
        ours = row["ours"]
        mean = "" if ours is None else f"{ours['mean']:.1f}" + ("" if ours["std"] is None else f" ± {ours['std']:.1f}")
        cells = [row["label"], row["metric"], mean, "" if ours is None else str(ours["n"]),
                 "not in the paper's table" if row["paper"] is None else f"{row['paper']:.1f}",
                 "" if row["difference"] is None else f"{row['difference']:+.1f}"]
        cells += [row["chosen"] or ""] if axis else []
        cells += ["" if row["info"][p] is None else f"{row['info'][p]:,.0f}" for p in info]
        # a task with several rows (MNLI-m and -mm) counts its runs' hours once
        cells.append("" if row["task"] in seen else f"{row['device_hours']:.2f}")
        seen.add(row["task"])
        lines.append("| " + " | ".join(cells) + " |")
    avg = table["average"]
    if avg:
        lines.append("| " + " | ".join(["Avg.", f"{avg['rows']} rows", f"{avg['ours']:.1f}", "",
                                         f"{avg['paper']:.1f}", f"{avg['difference']:+.1f}"]
                                        + [""] * (len(head) - 7) + [f"{table['device_hours']:.2f}"]) + " |")
    lines += ["", "Scores × 100. `Avg.` averages the rows that have both numbers."]
    if table["sweep"]:
        values = [str(v) for v in study["grid"][axis]]
        lines += ["", f"Mean validation score (each task's `task.monitor`, × 100) per {axis}, "
                      "over seeds; the chosen value is the best:", "",
                  "| task | " + " | ".join(values) + " |", "| --- |" + " ---: |" * len(values)]
        for task, means in table["sweep"].items():
            lines.append(f"| {task} | " + " | ".join(
                "" if v not in means else (f"**{means[v]:.1f}**" if v == table["chosen"].get(task)
                                           else f"{means[v]:.1f}") for v in values) + " |")
    if study.get("notes"):
        lines += ["", "Where these runs differ from the paper's:", ""]
        lines += [f"- {note}" for note in study["notes"]]
    if "submission" in study:
        done = extra.get("submission")
        lines += ["", f"GLUE server zip: `{done}` (beside this file)" if done else
                  f"GLUE server zip: not written ({extra.get('submission_error')})"]
    return "\n".join(lines) + "\n"


def plot_compare(table: dict, path: Path, title: str, column: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = table["rows"]
    fig = Figure(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["ours"]["mean"] if r["ours"] else 0 for r in rows], 0.4,
           yerr=[(r["ours"]["std"] or 0) if r["ours"] else 0 for r in rows], capsize=3, label="ours")
    ax.bar([x + 0.2 for x in xs], [r["paper"] or 0 for r in rows], 0.4, label=column)
    ax.set_xticks(list(xs), [r["label"] for r in rows], rotation=30 if len(rows) > 5 else 0)
    ax.set_ylabel("score × 100 (ours: mean ± std over seeds)")
    ax.set_title(title, fontsize="medium", wrap=True)
    ax.legend(fontsize="small")
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))


def submit(study: dict, runs: list[Run], table: dict, out: Path, sweep: Path, extra: dict) -> None:
    """The GLUE server's zip of the chosen runs; a grid without every GLUE task has none (said in
    the results, not an error: a smaller grid is a study's ordinary use)."""
    from tokentune.sweep.glue_submission import write_submission

    axis = table["select"]
    chosen = [r for r in runs if axis is None or same(r.setting(axis), table["chosen"].get(r.setting("task")))]
    try:
        extra["submission"] = write_submission(chosen, out, str(sweep)).name  # beside results.md
    except UserError as err:
        extra["submission"], extra["submission_error"] = None, str(err)
        print(f"study: no GLUE submission: {err}", file=sys.stderr)


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
        extra = {"command": cmd, "runs": len(runs), "skipped": len(skipped),
                 "wall_time_s": time.perf_counter() - start}
        env = environment()
        if "paper" in study:
            table = compare(study, runs)
            if "submission" in study:
                submit(study, runs, table, out / study["submission"], sweep, extra)
            md = compare_markdown(study, table, env, extra)
            plot_compare(table, out / "results.png", study["title"], study["paper"]["column"])
        else:
            table = pivot(study, runs)
            md = to_markdown(study, table, env, extra)
            plot(table, out / "results.png", study["title"])
        write_atomic(out / "results.md", md)
        write_atomic(out / "results.json", json.dumps(
            {"study": study, "environment": env, **extra, "table": table}, indent=2) + "\n")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(md, end="")
    return table


if __name__ == "__main__":
    main()
