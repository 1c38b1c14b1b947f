"""`tokentune-glue-submission RUNS_DIR [--out glue.zip]`: runs (one per GLUE task, e.g. a sweep
folder) into the zip the GLUE server takes: one TSV per task under the server's file names, each
with its `index` column and label strings, STS-B clipped to [0, 5], every row count checked
against the task's test split.

Each run's unlabelled test splits were predicted when it finished (results.json
`test_predictions`: tokentune.run.fit). Where a task has several runs (seeds, rates), the one with
the best monitored validation score is taken, and the choice is printed. AX is predicted by the
MNLI model: a `task=ax` run (MNLI plus the diagnostic split) gives AX.tsv and, when the set has no
`task=mnli` run, MNLI-m.tsv and MNLI-mm.tsv too.
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path
from typing import Optional, Sequence

from tokentune.errors import UserError
from tokentune.sweep.runs import Run, find_runs

# server file → (the tasks whose run may give it, in order of preference; its test split)
FILES = {
    "CoLA.tsv": (("cola",), "test"), "SST-2.tsv": (("sst2",), "test"), "MRPC.tsv": (("mrpc",), "test"),
    "STS-B.tsv": (("stsb",), "test"), "QQP.tsv": (("qqp",), "test"),
    "MNLI-m.tsv": (("mnli", "ax"), "test_matched"), "MNLI-mm.tsv": (("mnli", "ax"), "test_mismatched"),
    "QNLI.tsv": (("qnli",), "test"), "RTE.tsv": (("rte",), "test"), "WNLI.tsv": (("wnli",), "test"),
    "AX.tsv": (("ax",), "test_ax"),
}
REGRESSION_RANGE = {"STS-B.tsv": (0.0, 5.0)}  # the server's scale


def best_runs(runs: list[Run]) -> dict[str, Run]:
    """Per task, its run with the best monitored validation score."""
    from tokentune.config import monitored, stage
    from tokentune.model.metrics import higher_is_better

    by_task: dict[str, list[Run]] = {}
    for r in runs:
        by_task.setdefault(r.results.task, []).append(r)
    best = {}
    for task, members in by_task.items():
        split, metric = monitored(members[0].defaults.get("task.monitor", "loss"), members[0].task_splits())
        key, sign = f"{stage(split)}/{metric}", 1 if higher_is_better(metric) else -1
        best[task] = max(members, key=lambda r: sign * r.results.validation.get(key, float("-inf") * sign))
        if len(members) > 1:
            print(f"{task}: {best[task].dir} (best {key} of {len(members)} runs)", file=sys.stderr)
    return best


def submission(runs_dir: Path, out: Path) -> Path:
    runs, _ = find_runs(runs_dir)
    return write_submission(runs, out, str(runs_dir))


def write_submission(runs: list[Run], out: Path, source: str) -> Path:
    """The zip of `runs` (found in `source`, named in the errors): per task, its best run."""
    runs = [r for r in runs if r.results.test_predictions]
    chosen = best_runs(runs)
    missing = [name for name, (tasks, _) in FILES.items() if not any(t in chosen for t in tasks)]
    if missing:
        raise UserError(f"{source}: no run with test predictions for {', '.join(missing)} "
                        f"(the submission needs every GLUE task; have {', '.join(sorted(chosen)) or 'none'})")
    models = sorted({r.results.model for r in chosen.values()})
    if len(models) > 1:
        raise UserError(f"{source}: the runs mix models ({', '.join(models)}); a submission is one model's")
    contents = {}
    for name, (tasks, split) in FILES.items():
        run = chosen[next(t for t in tasks if t in chosen)]
        predictions = run.results.test_predictions.get(split)
        if predictions is None or not Path(predictions).is_file():
            raise UserError(f"{run.dir}: no predictions of its {split} split for {name} "
                            f"(results.json test_predictions: {run.results.test_predictions})")
        contents[name] = _checked(Path(predictions), name, _test_rows(run, split))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in contents.items():
            z.writestr(name, text)
    tmp.replace(out)
    return out


def _test_rows(run: Run, split: str) -> int:
    """Rows of the run's own test split, read as training read it."""
    import yaml

    from tokentune.config import from_dict
    from tokentune.data.readers import read_split

    cfg = from_dict(yaml.safe_load((run.dir / "config.yaml").read_text(encoding="utf-8")))
    return len(read_split(cfg.task, split))


def _checked(path: Path, name: str, expected: int) -> str:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != ["index", "prediction"]:
        raise UserError(f"{path}: not a prediction file (its header is not 'index<TAB>prediction')")
    if len(lines) - 1 != expected:
        raise UserError(f"{path}: {len(lines) - 1} predictions for {name}, but the test split has "
                        f"{expected} rows; predict the whole split again")
    if name in REGRESSION_RANGE:
        low, high = REGRESSION_RANGE[name]
        rows = [line.split("\t") for line in lines[1:]]
        lines = [lines[0]] + [f"{i}\t{min(max(float(v), low), high):.6f}" for i, v in rows]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        prog="tokentune-glue-submission",
        description="Runs of every GLUE task (e.g. a sweep folder) into the zip the GLUE server accepts.")
    parser.add_argument("runs_dir", type=Path, help="a folder holding one finished run per task (or several)")
    parser.add_argument("--out", type=Path, default=Path("glue_submission.zip"))
    args = parser.parse_args(argv)
    try:
        if not args.runs_dir.is_dir():
            raise UserError(f"{args.runs_dir}: no such folder")
        out = submission(args.runs_dir, args.out)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"wrote {out} ({len(FILES)} files)")


if __name__ == "__main__":
    main()
