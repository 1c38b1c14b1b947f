"""Turn finished runs' results.json files into a results.md that names where they were measured.

usage: python experiments/report.py OUT.md RUN_DIR [RUN_DIR ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

from tokentune.run.provenance import environment, markdown_lines
from tokentune.run.results import RunResults


def main(out: str, *runs: str) -> None:
    rows = ["| run | task | model | method | tokenizer | vocab size | validation | trainable params | "
            "total params | checkpoint (MB) | wall time (s) |",
            "| --- | --- | --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for run in runs:
        r = RunResults.load(Path(run) / "results.json")
        val = ", ".join(f"{k.split('/')[1]} {v:.4f}" for k, v in sorted(r.validation.items()))
        vocab, ckpt = r.vocabulary.get("vocab_size"), r.checkpoint_mb
        rows.append(f"| {Path(run).name} | {r.task} | {r.model} | {r.finetune} | {r.tokenizer} | "
                    f"{'' if vocab is None else f'{vocab:,}'} | {val} | {r.parameters['trainable']:,} | "
                    f"{r.parameters['total']:,} | {'' if ckpt is None else f'{ckpt:.1f}'} | "
                    f"{r.wall_time_s:.0f} |")
    Path(out).write_text("\n".join(["# Results", "", *markdown_lines(environment()), "", *rows]) + "\n")
    print(Path(out).read_text())


if __name__ == "__main__":
    main(*sys.argv[1:])
