"""The chosen metric per group as a bar chart with std error bars (PNG)."""
from __future__ import annotations

from pathlib import Path

from tokentune.atomic import write_atomic
from tokentune.sweep.table import Table


def plot(table: Table, path: Path) -> None:
    # The Figure API with an Agg canvas: no pyplot, no global backend, no display needed
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in table.rows if table.metric in r.metrics]
    labels = [(", ".join(f"{k}={r.group[k]}" for k in table.keys) or "all runs")
              + f"\nn={len(r.runs)}" for r in rows]
    stats = [r.metrics[table.metric] for r in rows]
    fig = Figure(figsize=(max(5.0, 1.0 + 1.4 * len(rows)), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.bar(range(len(rows)), [s.mean for s in stats], yerr=[s.std or 0.0 for s in stats],
           capsize=4, color="tab:blue")
    ax.set_xticks(range(len(rows)), labels, rotation=30 if len(rows) > 3 else 0,
                  ha="right" if len(rows) > 3 else "center")
    ax.set_ylabel(table.metric)
    ax.set_title("mean ± std over seeds")
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))
