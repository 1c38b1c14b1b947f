"""`tokentune-collect SWEEP_DIR`: a Hydra sweep's runs as one table, mean ± std over seeds.

    python train.py -m finetune=lora,adapter seed=1,2,3
    python -m tokentune.sweep.collect multirun/<time> [--metric validation/accuracy] [--out DIR]

Writes summary.md, summary.csv and summary.png (the chosen metric per group) into the sweep
folder or --out. Runs that did not finish (no or a truncated results.json) are skipped and named.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from tokentune.atomic import write_atomic
from tokentune.errors import UserError
from tokentune.sweep.runs import Skipped, find_runs
from tokentune.sweep.table import (Table, build_table, default_metric, parse_metric, to_csv,
                                   to_markdown)


@dataclass
class Summary:
    table: Table
    skipped: list[Skipped]
    markdown: Path
    csv: Path
    png: Path


def collect(sweep_dir: Path, metric: Optional[str] = None, out: Optional[Path] = None) -> Summary:
    from tokentune.sweep.plot import plot

    if not sweep_dir.exists():
        raise UserError(f"{sweep_dir} does not exist")
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is not a folder; give the sweep folder (multirun/<time>)")
    runs, skipped = find_runs(sweep_dir)
    if skipped:
        print(f"skipped {len(skipped)} of {len(runs) + len(skipped)} runs:", file=sys.stderr)
        for s in skipped:
            print(f"  {s.dir.relative_to(sweep_dir)}: {s.reason}", file=sys.stderr)
    if not runs:
        found = (f"{len(skipped)} unfinished" if skipped
                 else "no run folders (.hydra/ or results.json)")
        raise UserError(f"no finished runs in {sweep_dir}: {found}")
    table = build_table(runs, parse_metric(metric) if metric else default_metric(runs))
    out = out or sweep_dir
    summary = Summary(table, skipped, out / "summary.md", out / "summary.csv", out / "summary.png")
    write_atomic(summary.markdown, to_markdown(table))
    write_atomic(summary.csv, to_csv(table))
    plot(table, summary.png)
    return summary


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        prog="tokentune-collect",
        description="Collect a Hydra sweep folder into a table: metrics mean ± std over seeds, "
                    "grouped by the swept keys (summary.md, summary.csv, summary.png).")
    parser.add_argument("sweep_dir", type=Path, help="the sweep folder, e.g. multirun/<time>")
    parser.add_argument("--metric", help="split/name to plot, e.g. validation/accuracy "
                                         "(default: validation/<task.monitor>)")
    parser.add_argument("--out", type=Path, help="where to write the summary (default: sweep_dir)")
    args = parser.parse_args(argv)
    try:
        summary = collect(args.sweep_dir, args.metric, args.out)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(summary.markdown.read_text(encoding="utf-8"), end="")
    print(f"wrote {summary.markdown}, {summary.csv}, {summary.png}")


if __name__ == "__main__":
    main()
