"""What the side-by-side measurements share (tokentune and an HF Trainer recipe on the same rows
and settings: ner_conll/, squad/): running a command timed, a run's row of results.json, the
file rewritten after each run, and the HF side's command-line settings and TrainingArguments.

The run.py and hf_trainer.py scripts put this folder on sys.path and import it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def data_root(given: Path | None) -> Path:
    """The folder holding the data sets: the argument, else $TOKENTUNE_DATA, else ../shared/data."""
    return given or Path(os.environ.get("TOKENTUNE_DATA") or ROOT.parent / "shared" / "data")


def timed(cmd: list[str], log: Path) -> float:
    """Runs `cmd` from the repository root (offline, output into `log`); its wall time in seconds."""
    start = time.perf_counter()
    with log.open("w") as f:
        done = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        sys.exit(f"{' '.join(cmd[:3])} ... failed ({done.returncode}); see {log}")
    return time.perf_counter() - start


def tokentune_row(run_dir: Path) -> dict:
    """A tokentune run's results.json as a row: validation scores without the val/ prefix, steps,
    vocabulary, parameters, the data report."""
    from tokentune.run.results import RunResults

    run = RunResults.load(run_dir / "results.json")
    return {"validation": {k.removeprefix("val/"): v for k, v in run.validation.items()},
            "steps": run.steps, "vocab_size": run.vocabulary["vocab_size"],
            "parameters": {k: run.parameters[k] for k in ("trainable", "total")}, "data": run.data}


def hf_row(run: dict, *, vocab_size: int, splits: tuple[str, ...] = ("validation",)) -> dict:
    """The HF side's JSON as a row of the same shape (its model trains every parameter)."""
    return {**{s: run[s] for s in splits}, "steps": run["steps"], "vocab_size": vocab_size,
            "parameters": {"trainable": run["parameters"], "total": run["parameters"]}}


def record(results_file: Path, name: str, row: dict, cmd: list[str], wall: float) -> dict:
    """Adds the run's row (with its command and wall time) to results_file and the environment;
    the file is read again just before it is written, so invocations with --only a / --only b
    may share it."""
    from tokentune.atomic import write_json
    from tokentune.run.provenance import environment

    row.update(command=" ".join(Path(c).name if c.startswith(str(ROOT)) else c for c in cmd[1:]),
               wall_time_s=round(wall, 1))
    results = json.loads(results_file.read_text()) if results_file.is_file() else {"runs": {}}
    results["runs"][name] = row
    results["environment"] = environment()
    write_json(results_file, results)
    return results


def hf_settings(parser, **defaults) -> None:
    """The settings both sides share, as the HF scripts take them (defaults: the experiment's)."""
    for flag, kind in (("epochs", float), ("lr", float), ("batch-size", int), ("max-length", int),
                       ("warmup-ratio", float), ("weight-decay", float), ("seed", int)):
        parser.add_argument(f"--{flag}", type=kind, default=defaults[flag.replace("-", "_")])


def training_arguments(args, out_dir: Path, *, eval_batch_size: int):
    """HF Trainer's arguments for those settings: linear decay after the warm-up, no checkpoints,
    no evaluation during training, the CPU unless a GPU is there."""
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=str(out_dir), learning_rate=args.lr, num_train_epochs=args.epochs,
                             per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=eval_batch_size,
                             warmup_steps=args.warmup_ratio, weight_decay=args.weight_decay,  # a float: a ratio (transformers 5)
                             lr_scheduler_type="linear", seed=args.seed, save_strategy="no",
                             eval_strategy="no", report_to=[], use_cpu=not torch.cuda.is_available(),
                             logging_steps=50, disable_tqdm=True)
