"""`make ingest OUT=...`: an offline GPU node's run.sh output into the committed result files and
the README's GPU results section.

usage (repository root):  python experiments/gpu_node/ingest.py OUT [--readme README.md]

Writes (each with the GPU, package versions, commit and command of the node's run):
    experiments/bench/bench.{json,md}, memory.{json,md}      throughput; peak memory per method
    experiments/minilm_sst2_fast/results.{json,md}          time to accuracy (or how far it got)
    experiments/minilm_sst2/results.{json,md}, SST-2.tsv     full fine-tuning (the HF anchor's settings)
    experiments/peft_glue/gpu_sst2/results.{json,md}, SST-2.<method>.tsv
    experiments/vocab_study/gpu_sst2/results.{json,md}, SST-2.<run>.tsv
and regenerates the block between the README's gpu-results markers from those files alone: no
number in it is typed by hand. Targets are the issue's, from the anchors of design.md §5.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from tokentune.atomic import write_atomic  # noqa: E402
from tokentune.errors import UserError  # noqa: E402

COMMAND = "bash bundle/run.sh OUT"
EXP = ROOT / "experiments"
BEGIN, END = "<!-- gpu-results:begin (make ingest) -->", "<!-- gpu-results:end -->"
# accuracy run -> (label, dev-accuracy target); bpe32k's target is relative to full's
ACCURACY = {"full": ("full", 0.885), "adapter": ("adapter", 0.884), "lora": ("LoRA", 0.868),
            "prefix": ("prefix", 0.864), "bpe32k": ("full, tokenizer=bpe32k (FVT)", None)}
FAST_TARGET = {"accuracy": 0.885, "seconds": 56.0}
SPEED_TARGET = {"run_glue": 5.0, "tuned": 4.0}
MEMORY_TARGET = 0.6


def read_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def provenance(env: dict | None, summary: dict) -> list[str]:
    device = (env or {}).get("device") or (summary.get("node") or {}).get("device", "unknown")
    lines = [f"- device: {device}"]
    if env:
        lines += [f"- commit: {env['commit']}",
                  "- packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items())]
    return lines + [f"- command: `{COMMAND}` (experiments/gpu_node/run.sh), ingested by `make ingest`"]


def step_line(summary: dict, step: str) -> str:
    st = summary["steps"].get(step)
    if st is None:
        return f"- step `{step}`: not run"
    how = "finished" if st["rc"] == 0 else ("cut at its time limit" if st["rc"] in (124, 137) else f"failed (exit {st['rc']})")
    return f"- step `{step}`: {how} after {st['seconds']:.0f} s (limit {st['limit']} s)"


def last_logged_step(run: Path) -> int | None:
    path = run / "logs" / "metrics.csv"
    if not path.is_file():
        return None
    steps = [int(r["step"]) for r in csv.DictReader(path.open()) if r.get("step")]
    return max(steps) + 1 if steps else None


def accuracy_of(results: dict) -> float:
    return results["validation"]["val/accuracy"]


def run_rows(runs: dict[str, dict], targets: dict[str, float | None]) -> list[str]:
    rows = ["| run | tokenizer | vocab size | trainable params | steps | SST-2 dev accuracy | target | wall time (s) |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in runs.items():
        target = targets.get(name)
        met = "" if target is None else f"≥ {100 * target:.1f} " + ("met" if accuracy_of(r) >= target else "**missed**")
        vocab = r.get("vocabulary", {}).get("vocab_size")
        rows.append(f"| {name} | {r['tokenizer']} | {'' if vocab is None else f'{vocab:,}'} | "
                    f"{r['parameters']['trainable']:,} | {r['steps']:,} | {100 * accuracy_of(r):.2f} | {met} | "
                    f"{r['wall_time_s']:.0f} |")
    return rows


def write_runs(dest: Path, title: str, runs: dict[str, dict], run_dirs: dict[str, Path],
               targets: dict[str, float | None], head: list[str], predictions: str) -> None:
    """results.json/.md of a group of accuracy runs, with each run's test predictions beside them."""
    dest.mkdir(parents=True, exist_ok=True)
    notes = []
    for name, run in run_dirs.items():
        tsv = run / "SST2.tsv"
        target = dest / predictions.format(name=name)
        if tsv.is_file():
            shutil.copyfile(tsv, target)
        else:
            target.unlink(missing_ok=True)
            notes.append(f"- {name}: no test predictions (the run ended before writing them)")
    write_atomic(dest / "results.json", json.dumps({"title": title, "command": COMMAND, "runs": runs}, indent=2) + "\n")
    write_atomic(dest / "results.md", "\n".join([f"# {title}", "", *head, "", *run_rows(runs, targets), "", *notes]) + "\n")


def ingest(out: Path, readme: Path, exp: Path = EXP) -> str:
    summary = read_json(out / "summary.json")
    if summary is None:
        raise UserError(f"{out}/summary.json not found: OUT must be the folder run.sh wrote")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("bench", "fast", "accuracy"):
            if (out / f"{name}.tgz").is_file():
                with tarfile.open(out / f"{name}.tgz") as tar:
                    tar.extractall(work, filter="data")
        bench, memory = read_json(work / "bench" / "bench.json"), read_json(work / "bench" / "memory.json")
        env = (summary.get("node") or {}).get("environment") or (bench or memory or {}).get("environment")
        head = provenance(env, summary)
        for name in ("summary.json", "summary.md"):  # the node's own account, steps and limits
            write_atomic(exp / "gpu_node" / name, (out / name).read_text())
        block = ["### Measured on a GPU node", "", *head, ""]

        # 1. throughput and memory
        block += ["**Throughput** (BERT-base size, SST-2, batch 32; samples/s):", "", step_line(summary, "bench"), ""]
        for name, report in (("bench", bench), ("memory", memory)):
            if report:
                report["node_run"] = {"command": COMMAND, "step": summary["steps"].get("bench")}
                write_atomic(exp / "bench" / f"{name}.json", json.dumps(report, indent=2) + "\n")
                from_bench = (work / "bench" / f"{name}.md").read_text()
                write_atomic(exp / "bench" / f"{name}.md", from_bench + f"{step_line(summary, 'bench')}; `{COMMAND}`\n")
        if bench:
            block += ["| set-up | samples/s | target for tokentune |", "| --- | ---: | --- |"]
            tt = bench["results"].get("tokentune", {})
            for name, r in bench["results"].items():
                target = ""
                if name in SPEED_TARGET:
                    ratio = bench["ratios"].get(name)
                    target = (f"≥ {SPEED_TARGET[name]:g}× this: " +
                              ("not measured" if ratio is None else f"{ratio:.2f}× " + ("met" if ratio >= SPEED_TARGET[name] else "**missed**")))
                value = f"{r['samples_per_s']:,.0f}" if "samples_per_s" in r else "failed: " + r["error"].splitlines()[0][:100]
                block.append(f"| {name} | {value} | {target} |")
            if "samples_per_s" not in tt:
                block += ["", "tokentune's own number is missing: see the step line above and "
                          "`experiments/bench/bench.md`."]
            block.append("")
        if memory:
            full = memory["results"].get("tokentune", {}).get("peak_memory_gb")
            # the memory run is eager and short, but its samples/s is still tokentune's speed
            # without torch.compile: the number to read when the compiled one is missing
            block += ["**Peak GPU memory per method** (eager, BERT-base size, batch 32):", "",
                      "| method | peak memory (GB) | ÷ full | target | samples/s, eager |",
                      "| --- | ---: | ---: | --- | ---: |"]
            for name, r in memory["results"].items():
                peak = r.get("peak_memory_gb")
                share = peak / full if peak and full else None
                target = ""
                if name in ("tokentune+lora", "tokentune+adapter") and share is not None:
                    target = f"≤ {MEMORY_TARGET} " + ("met" if share <= MEMORY_TARGET else "**missed**")
                speed = f"{r['samples_per_s']:,.0f}" if "samples_per_s" in r else ""
                block.append(f"| {name} | {'failed' if peak is None else f'{peak:.2f}'} | "
                             f"{'' if share is None else f'{share:.2f}'} | {target} | {speed} |")
            block.append("")

        # 2. time to accuracy
        fast_dir, fast = work / "fast", read_json(work / "fast" / "results.json")
        st = summary["steps"].get("fast") or {}
        fast_md = ["# Time to accuracy: experiment=minilm_sst2_fast (whole command)", "", *head, step_line(summary, "fast")]
        if fast:
            acc, secs = accuracy_of(fast), st.get("seconds")
            met = acc >= FAST_TARGET["accuracy"] and secs is not None and secs <= FAST_TARGET["seconds"]
            line = (f"{100 * acc:.2f} % SST-2 dev in {secs:.0f} s for the whole command (target ≥ "
                    f"{100 * FAST_TARGET['accuracy']:.1f} % in ≤ {FAST_TARGET['seconds']:.0f} s: {'met' if met else '**missed**'})")
            fast_record = {"status": "finished", "command_s": secs, "results": fast}
        else:
            reached = last_logged_step(fast_dir)
            line = (f"did not finish within the step's {st.get('limit')} s limit (target: ≥ "
                    f"{100 * FAST_TARGET['accuracy']:.1f} % in ≤ {FAST_TARGET['seconds']:.0f} s: **missed**)"
                    + (f"; its last logged training step was {reached:,}" if reached else ""))
            fast_record = {"status": "not finished", "step": st, "last_logged_step": reached}
        fast_md += ["", f"- result: {line}"]
        write_atomic(exp / "minilm_sst2_fast" / "results.json", json.dumps(
            {**fast_record, "environment": env, "command": COMMAND}, indent=2) + "\n")
        write_atomic(exp / "minilm_sst2_fast" / "results.md", "\n".join(fast_md) + "\n")
        block += ["**Time to accuracy** (`experiment=minilm_sst2_fast`, alone on the GPU):", "",
                  step_line(summary, "fast"), f"- {line}", ""]

        # 3. accuracy
        acc_dirs = {m: work / "accuracy" / m for m in ACCURACY}
        runs = {m: r for m, d in acc_dirs.items() if (r := read_json(d / "results.json")) is not None}
        targets = {m: t for m, (_, t) in ACCURACY.items()}
        if "full" in runs:
            targets["bpe32k"] = accuracy_of(runs["full"]) - 0.01
        acc_head = [*head, step_line(summary, "accuracy"),
                    "- MiniLM-L6 (pretrained, fp16 copy loaded into fp32), full SST-2, 3 epochs, batch 32, "
                    "bf16, seed 42, each method at its default rate; five runs side by side on one GPU"]
        groups = [(exp / "minilm_sst2", "MiniLM full fine-tuning on SST-2 (the HF Trainer anchor's settings)",
                   ["full"], "SST-2.tsv"),
                  (exp / "peft_glue" / "gpu_sst2", "PEFT methods on SST-2 (MiniLM-L6, one seed)",
                   ["full", "adapter", "lora", "prefix"], "SST-2.{name}.tsv"),
                  (exp / "vocab_study" / "gpu_sst2", "Task-built vocabulary (bpe32k, FVT) vs MiniLM's own (SST-2)",
                   ["full", "bpe32k"], "SST-2.{name}.tsv")]
        for dest, title, names, predictions in groups:
            have = {n: runs[n] for n in names if n in runs}
            if have:
                write_runs(dest, title, have, {n: acc_dirs[n] for n in have}, targets, acc_head, predictions)
        block += ["**Accuracy** (MiniLM-L6, full SST-2, 3 epochs, seed 42; bpe32k's target: within 1 point of full):", "",
                  step_line(summary, "accuracy"), "", *run_rows(runs, targets), ""]
        missing = [m for m in ACCURACY if m not in runs]
        if missing:
            block.append(f"No result for: {', '.join(missing)}.")
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise UserError(f"{readme}: the markers {BEGIN} ... {END} are missing")
    generated = "\n".join([BEGIN, *block, END])
    write_atomic(readme, re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: generated, text, flags=re.S))
    return generated


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Ingest an offline GPU node's run.sh output.")
    p.add_argument("out", type=Path)
    p.add_argument("--readme", type=Path, default=ROOT / "README.md")
    p.add_argument("--experiments", type=Path, default=EXP, help="where the result files go")
    args = p.parse_args(argv)
    try:
        print(ingest(args.out, args.readme, args.experiments))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
