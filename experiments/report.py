"""Turn finished runs' results.json files into a results.md that names where they were measured.

usage: python experiments/report.py OUT.md RUN_DIR [RUN_DIR ...]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tokentune.run.provenance import environment, markdown_lines


def main(out: str, *runs: str) -> None:
    rows = ["| run | task | model | method | tokenizer | validation | trainable params | wall time (s) |",
            "| --- | --- | --- | --- | --- | --- | ---: | ---: |"]
    for run in runs:
        r = json.loads((Path(run) / "results.json").read_text())
        val = ", ".join(f"{k.split('/')[1]} {v:.4f}" for k, v in sorted(r["validation"].items()))
        rows.append(f"| {Path(run).name} | {r['task']} | {r['model']} | {r['finetune']} | "
                    f"{r['tokenizer']} | {val} | {r['parameters']['trainable']:,} | {r['wall_time_s']:.0f} |")
    Path(out).write_text("\n".join(["# Results", "", *markdown_lines(environment()), "", *rows]) + "\n")
    print(Path(out).read_text())


if __name__ == "__main__":
    main(*sys.argv[1:])
