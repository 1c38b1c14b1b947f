"""A sweep's runs as one table: grouped by the swept keys, mean ± std over seeds."""
from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass
from typing import Optional

from tokentune.config import monitored, stage
from tokentune.errors import UserError
from tokentune.run.results import RunResults
from tokentune.sweep.runs import Run

SECTIONS = ("validation", "test")  # results.json's sections: validation/accuracy, validation_matched/accuracy ...
NOT_SWEPT = {"seed"}  # the runs a mean and std are taken over


@dataclass
class Stat:
    mean: float
    std: Optional[float]  # sample standard deviation (n - 1); None for a single run

    @classmethod
    def of(cls, values: list[float]) -> "Stat":
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None)


@dataclass
class Row:
    group: dict[str, str]  # swept key → value
    runs: list[Run]
    metrics: dict[str, Stat]  # only the metrics this group's runs report
    trainable: Stat
    wall_time_s: Stat


@dataclass
class Table:
    keys: list[str]
    metrics: list[str]  # e.g. validation/accuracy; the chosen metric first
    metric: str  # the chosen one (plotted)
    rows: list[Row]


def metric_value(results: RunResults, metric: str) -> Optional[float]:
    split, _, name = metric.partition("/")
    section = next(s for s in SECTIONS if split.startswith(s))
    value = getattr(results, section).get(f"{stage(split)}/{name}")
    return None if value is None else float(value)


def parse_metric(metric: str) -> str:
    """`validation/accuracy`, `validation_matched/accuracy` (or results.json's own `val/accuracy`,
    `val_matched/accuracy`) → the split's name / the metric's."""
    split, _, name = metric.partition("/")
    split = "validation" + split[len("val"):] if split.startswith("val") and not split.startswith("validation") else split
    if not any(split == s or split.startswith(s + "_") for s in SECTIONS) or not name:
        raise UserError(f"--metric: '{metric}' is not split/name, e.g. validation/accuracy")
    return f"{split}/{name}"


def _split_name(key: str) -> str:
    """results.json's `val_matched/accuracy` → `validation_matched/accuracy`."""
    prefix, _, name = key.partition("/")
    return f"validation{prefix[len('val'):]}/{name}"


def default_metric(runs: list[Run]) -> str:
    """The metric the runs' task picks its best checkpoint by (`task.monitor`)."""
    monitors = sorted({r.defaults.get("task.monitor", "-") for r in runs})
    if monitors == ["-"]:
        raise UserError("the runs have no config.yaml to read task.monitor from; "
                        "pass --metric, e.g. --metric validation/accuracy")
    if len(monitors) > 1:
        raise UserError(f"the runs monitor different metrics ({', '.join(monitors)}); "
                        "choose one with --metric, e.g. --metric validation/accuracy")
    split, name = monitored(monitors[0], runs[0].task_splits())
    return f"{split}/{name}"


def swept_keys(runs: list[Run]) -> list[str]:
    """Overridden keys whose value differs between runs, in command-line order; seed excluded."""
    keys = list(dict.fromkeys(k for r in runs for k in r.overrides if k not in NOT_SWEPT))
    return [k for k in keys if len({r.setting(k) for r in runs}) > 1]


def build_table(runs: list[Run], metric: str) -> Table:
    keys = swept_keys(runs)
    groups: dict[tuple[str, ...], list[Run]] = {}
    for r in runs:
        groups.setdefault(tuple(r.setting(k) for k in keys), []).append(r)
    names = {_split_name(k) for r in runs for k in r.results.validation}
    if not any(metric_value(r.results, metric) is not None for r in runs):
        raise UserError(f"--metric: no run reports {metric}; "
                        f"they report {', '.join(sorted(names))}")
    rows = []
    for values, members in groups.items():
        stats = {}
        for name in names | {metric}:
            found = [v for v in (metric_value(r.results, name) for r in members) if v is not None]
            if found:
                stats[name] = Stat.of(found)
        rows.append(Row(dict(zip(keys, values)), members, stats,
                        Stat.of([r.results.parameters["trainable"] for r in members]),
                        Stat.of([r.results.wall_time_s for r in members])))
    return Table(keys, [metric] + sorted(names - {metric}), metric, rows)


def to_markdown(table: Table) -> str:
    head = table.keys + ["n"] + table.metrics + ["trainable params", "wall time (s)"]
    lines = ["| " + " | ".join(head) + " |",
             "| " + " | ".join(["---"] * len(table.keys) + ["---:"] * (len(head) - len(table.keys)))
             + " |"]
    for row in table.rows:
        cells = [row.group[k] for k in table.keys] + [str(len(row.runs))]
        cells += [_mean_std(row.metrics.get(m)) for m in table.metrics]
        cells += [f"{row.trainable.mean:,.0f}", f"{row.wall_time_s.mean:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean_std(stat: Optional[Stat]) -> str:
    if stat is None:
        return ""
    return f"{stat.mean:.4f}" if stat.std is None else f"{stat.mean:.4f} ± {stat.std:.4f}"


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(table.keys + ["n"] + [f"{m} {s}" for m in table.metrics for s in ("mean", "std")]
                 + ["trainable_params", "wall_time_s"])
    for row in table.rows:
        cells: list = [row.group[k] for k in table.keys] + [len(row.runs)]
        for m in table.metrics:
            stat = row.metrics.get(m)
            cells += ["", ""] if stat is None else [stat.mean, "" if stat.std is None else stat.std]
        out.writerow(cells + [round(row.trainable.mean), row.wall_time_s.mean])
    return buf.getvalue()
