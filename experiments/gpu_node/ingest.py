"""`make ingest OUT=...`: an offline GPU node's run.sh output into the committed result files, and
the results tables of docs/results.md and the README regenerated from those files.

usage (repository root):
    python experiments/gpu_node/ingest.py OUT [--readme README.md] [--results docs/results.md]
    python experiments/gpu_node/ingest.py       (no OUT: only the tables, from the committed files)

Writes (each with the GPU, package versions, commit and command of the node's run):
    experiments/gpu_node/summary.{json,md}                  the node's own account: steps, limits
    experiments/bench/bench.{json,md}, memory.{json,md}      throughput; peak memory per method
    experiments/minilm_sst2_fast/results.{json,md}          time to accuracy (or how far it got)
    experiments/minilm_sst2/results.{json,md}, SST-2.tsv     full fine-tuning (the HF anchor's settings)
    experiments/peft_glue/gpu_sst2/results.{json,md}, SST-2.<method>.tsv
    experiments/vocab_study/gpu_sst2/results.{json,md}, SST-2.<run>.tsv
then regenerates, from those committed files alone, the block between the gpu-results markers of
docs/results.md (every table) and between the gpu-headline markers of README.md (one short
table): no number in either is typed by hand. Targets are the issue's, from the anchors of
design.md §5.
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
from tokentune.run.results import RunResults  # noqa: E402

COMMAND = "bash bundle/run.sh OUT"
EXP = ROOT / "experiments"
RESULTS_DOC, README = ROOT / "docs" / "results.md", ROOT / "README.md"
BEGIN, END = "<!-- gpu-results:begin (make ingest) -->", "<!-- gpu-results:end -->"
HEAD_BEGIN, HEAD_END = "<!-- gpu-headline:begin (make ingest) -->", "<!-- gpu-headline:end -->"
# accuracy run -> (label, dev-accuracy target); bpe32k's target is relative to full's
ACCURACY = {"full": ("full", 0.885), "adapter": ("adapter", 0.884), "lora": ("LoRA", 0.868),
            "prefix": ("prefix", 0.864), "bpe32k": ("full, tokenizer=bpe32k (FVT)", None)}
FAST_TARGET = {"accuracy": 0.885, "seconds": 56.0}
SPEED_TARGET = {"run_glue": 5.0, "tuned": 4.0}
MEMORY_TARGET = 0.6
SETUPS = {"run_glue": "HF Trainer with run_glue's defaults", "tuned": "HF Trainer tuned",
          "tokentune": "tokentune compiled"}


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
    eager = [f"{run} ({sig})" for run, sig in summary.get("ran_eager", {}).items() if run.split("/")[0] == step]
    if eager:  # run.sh repeated these eager after their compiled process died of a signal
        how += "; ran eager after a compiled crash: " + ", ".join(eager)
    return f"- step `{step}`: {how} after {st['seconds']:.0f} s (limit {st['limit']} s)"


def last_logged_step(run: Path) -> int | None:
    path = run / "logs" / "metrics.csv"
    if not path.is_file():
        return None
    steps = [int(r["step"]) for r in csv.DictReader(path.open()) if r.get("step")]
    return max(steps) + 1 if steps else None


def accuracy_of(results: RunResults) -> float:
    return results.validation["val/accuracy"]


def run_rows(runs: dict[str, RunResults], targets: dict[str, float | None]) -> list[str]:
    rows = ["| run | tokenizer | vocab size | trainable params | steps | SST-2 dev accuracy | target | wall time (s) |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in runs.items():
        target = targets.get(name)
        met = "" if target is None else f"≥ {100 * target:.1f} " + ("met" if accuracy_of(r) >= target else "**missed**")
        vocab = r.vocabulary.get("vocab_size")
        rows.append(f"| {name} | {r.tokenizer} | {'' if vocab is None else f'{vocab:,}'} | "
                    f"{r.parameters['trainable']:,} | {r.steps:,} | {100 * accuracy_of(r):.2f} | {met} | "
                    f"{r.wall_time_s:.0f} |")
    return rows


def write_runs(dest: Path, title: str, runs: dict[str, RunResults], run_dirs: dict[str, Path],
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
    committed = {"title": title, "command": COMMAND, "runs": {n: r.to_json() for n, r in runs.items()}}
    write_atomic(dest / "results.json", json.dumps(committed, indent=2) + "\n")
    write_atomic(dest / "results.md", "\n".join([f"# {title}", "", *head, "", *run_rows(runs, targets), "", *notes]) + "\n")


def ingest(out: Path, exp: Path = EXP) -> None:
    """The node's OUT folder into the committed result files under `exp` (tables: `render`)."""
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

        # 1. throughput and memory
        for name, report in (("bench", bench), ("memory", memory)):
            if report:
                report["node_run"] = {"command": COMMAND, "step": summary["steps"].get("bench")}
                write_atomic(exp / "bench" / f"{name}.json", json.dumps(report, indent=2) + "\n")
                from_bench = (work / "bench" / f"{name}.md").read_text()
                write_atomic(exp / "bench" / f"{name}.md", from_bench + f"{step_line(summary, 'bench')}; `{COMMAND}`\n")

        # 2. time to accuracy
        fast_dir, fast = work / "fast", read_json(work / "fast" / "results.json")
        st = summary["steps"].get("fast") or {}
        if fast:
            fast_record = {"status": "finished", "command_s": st.get("seconds"), "results": fast}
        else:
            fast_record = {"status": "not finished", "step": st, "last_logged_step": last_logged_step(fast_dir)}
        line = fast_line(fast_record, st)
        write_atomic(exp / "minilm_sst2_fast" / "results.json", json.dumps(
            {**fast_record, "environment": env, "command": COMMAND}, indent=2) + "\n")
        write_atomic(exp / "minilm_sst2_fast" / "results.md", "\n".join(
            ["# Time to accuracy: experiment=minilm_sst2_fast (whole command)", "", *head,
             step_line(summary, "fast"), "", f"- result: {line}"]) + "\n")

        # 3. accuracy
        acc_dirs = {m: work / "accuracy" / m for m in ACCURACY}
        runs = {m: RunResults.from_json(r) for m, d in acc_dirs.items() if (r := read_json(d / "results.json")) is not None}
        targets = accuracy_targets(runs)
        acc_head = [*head, step_line(summary, "accuracy"),
                    "- MiniLM-L6 (pretrained, fp16 copy loaded into fp32), full SST-2, 3 epochs, batch 32, "
                    "bf16, seed 42, each method at its default rate; five runs side by side on one GPU"]
        for dest, title, names, predictions in accuracy_groups(exp):
            have = {n: runs[n] for n in names if n in runs}
            if have:
                write_runs(dest, title, have, {n: acc_dirs[n] for n in have}, targets, acc_head, predictions)


def accuracy_groups(exp: Path) -> list[tuple[Path, str, list[str], str]]:
    """Where the accuracy runs are committed: (folder, title, runs, test-predictions file name)."""
    return [(exp / "minilm_sst2", "MiniLM full fine-tuning on SST-2 (the HF Trainer anchor's settings)",
             ["full"], "SST-2.tsv"),
            (exp / "peft_glue" / "gpu_sst2", "PEFT methods on SST-2 (MiniLM-L6, one seed)",
             ["full", "adapter", "lora", "prefix"], "SST-2.{name}.tsv"),
            (exp / "vocab_study" / "gpu_sst2", "Task-built vocabulary (bpe32k, FVT) vs MiniLM's own (SST-2)",
             ["full", "bpe32k"], "SST-2.{name}.tsv")]


def accuracy_targets(runs: dict[str, RunResults]) -> dict[str, float | None]:
    targets = {m: t for m, (_, t) in ACCURACY.items()}
    if "full" in runs:
        targets["bpe32k"] = accuracy_of(runs["full"]) - 0.01
    return targets


def fast_line(record: dict, step: dict) -> str:
    """The time-to-accuracy result in one line, from minilm_sst2_fast/results.json."""
    goal = f"≥ {100 * FAST_TARGET['accuracy']:.1f} % in ≤ {FAST_TARGET['seconds']:.0f} s"
    if record["status"] == "finished":
        acc, secs = accuracy_of(RunResults.from_json(record["results"])), record.get("command_s")
        met = acc >= FAST_TARGET["accuracy"] and secs is not None and secs <= FAST_TARGET["seconds"]
        return (f"{100 * acc:.2f} % SST-2 dev in {secs:.0f} s for the whole command (target {goal}: "
                f"{'met' if met else '**missed**'})")
    reached = record.get("last_logged_step")
    return (f"did not finish within the step's {step.get('limit')} s limit (target: {goal}: **missed**)"
            + (f"; its last logged training step was {reached:,}" if reached else ""))


def latest(exp: Path) -> dict:
    """What the last ingested node run measured, read back from the committed files alone.

    summary.json (rewritten by every ingest) says which parts that run produced; a result file
    it did not produce may still hold an earlier run's numbers, and is left out."""
    summary = read_json(exp / "gpu_node" / "summary.json")
    if summary is None:
        raise UserError(f"{exp}/gpu_node/summary.json not found: ingest a node run first (make ingest OUT=...)")
    bench = read_json(exp / "bench" / "bench.json") if "throughput" in summary else None
    memory = read_json(exp / "bench" / "memory.json") if "peak_memory_gb" in summary else None
    env = (summary.get("node") or {}).get("environment") or (bench or memory or {}).get("environment")
    runs: dict[str, RunResults] = {}
    for dest, _, names, _ in accuracy_groups(exp):
        committed = (read_json(dest / "results.json") or {}).get("runs", {})
        for name in names:
            if name in committed and (summary.get("accuracy") or {}).get(name) is not None:
                runs.setdefault(name, RunResults.from_json(committed[name]))
    return {"summary": summary, "env": env, "bench": bench, "memory": memory,
            "fast": read_json(exp / "minilm_sst2_fast" / "results.json"),
            "runs": {m: runs[m] for m in ACCURACY if m in runs}}


def render(exp: Path = EXP) -> str:
    """The full GPU results block (docs/results.md), from the committed result files alone."""
    got = latest(exp)
    summary, bench, memory, runs = got["summary"], got["bench"], got["memory"], got["runs"]
    head = provenance(got["env"], summary)
    block = ["### Measured on a GPU node", "", *head, ""]

    # 1. throughput and memory
    block += ["**Throughput** (BERT-base size, SST-2, batch 32; samples/s):", "", step_line(summary, "bench"), ""]
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
    block += ["**Time to accuracy** (`experiment=minilm_sst2_fast`, alone on the GPU):", "",
              step_line(summary, "fast")]
    if got["fast"]:
        block.append(f"- {fast_line(got['fast'], summary['steps'].get('fast') or {})}")
    block.append("")

    # 3. accuracy
    block += ["**Accuracy** (MiniLM-L6, full SST-2, 3 epochs, seed 42; bpe32k's target: within 1 point of full):", "",
              step_line(summary, "accuracy"), "", *run_rows(runs, accuracy_targets(runs)), ""]
    missing = [m for m in ACCURACY if m not in runs]
    if missing:
        block.append(f"No result for: {', '.join(missing)}.")
    return "\n".join([BEGIN, *block, END])


def render_headline(exp: Path = EXP) -> str:
    """The README's short results table: accuracy, parameters and memory per method."""
    got = latest(exp)
    runs, memory, bench = got["runs"], (got["memory"] or {}).get("results", {}), (got["bench"] or {}).get("results", {})
    env = got["env"] or {}
    device = env.get("device") or (got["summary"].get("node") or {}).get("device", "an unknown device")
    commit = f" at commit {env['commit']}" if env.get("commit") else ""
    rows = [f"Measured on one {device}{commit} by `{COMMAND}`; every table, the targets and the "
            "runs that did not finish are in [docs/results.md](docs/results.md).", "",
            "| method | SST-2 dev accuracy (%), MiniLM-L6 | trainable params, MiniLM-L6 | "
            "peak GPU memory (GB), BERT-base, eager | samples/s, BERT-base, eager |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for name, (label, _) in ACCURACY.items():
        r = runs.get(name)
        mem = memory.get("tokentune" if name == "full" else f"tokentune+{name}", {}) if name != "bpe32k" else {}
        if r is None and not mem:
            continue
        peak, speed = mem.get("peak_memory_gb"), mem.get("samples_per_s")
        accuracy = "no result" if r is None else f"{100 * accuracy_of(r):.2f}"
        trainable = "" if r is None else f"{r.parameters['trainable']:,}"
        rows.append(f"| {label} | {accuracy} | {trainable} | {'' if peak is None else f'{peak:.2f}'} | "
                    f"{'' if speed is None else f'{speed:,.0f}'} |")
    speeds = [f"{SETUPS.get(name, name)} {r['samples_per_s']:,.0f}" for name, r in bench.items() if "samples_per_s" in r]
    if speeds:
        rows += ["", "Throughput on the same BERT-base batches (batch 32, samples/s): " + ", ".join(speeds)
                 + ("" if "samples_per_s" in bench.get("tokentune", {}) else "; tokentune compiled: not measured yet")
                 + "."]
    return "\n".join([HEAD_BEGIN, *rows, HEAD_END])


def replaced(path: Path, begin: str, end: str, generated: str) -> str:
    """`path`'s text with the block between its markers replaced by `generated`."""
    text = path.read_text()
    if begin not in text or end not in text:
        raise UserError(f"{path}: the markers {begin} ... {end} are missing")
    return re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: generated, text, flags=re.S)


def write_tables(exp: Path, results_doc: Path, readme: Path) -> str:
    """Regenerate the tables between the markers of docs/results.md and the README (both
    checked before either is written)."""
    block = render(exp)
    pages = {results_doc: replaced(results_doc, BEGIN, END, block),
             readme: replaced(readme, HEAD_BEGIN, HEAD_END, render_headline(exp))}
    for path, text in pages.items():
        write_atomic(path, text)
    return block


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Ingest an offline GPU node's run.sh output and regenerate "
                                "the results tables; without OUT, only the tables.")
    p.add_argument("out", type=Path, nargs="?", help="the folder run.sh wrote on the node")
    p.add_argument("--readme", type=Path, default=README, help="holds the gpu-headline markers")
    p.add_argument("--results", type=Path, default=RESULTS_DOC, help="holds the gpu-results markers")
    p.add_argument("--experiments", type=Path, default=EXP, help="where the result files go")
    args = p.parse_args(argv)
    try:
        if args.out is not None:
            ingest(args.out, args.experiments)
        print(write_tables(args.experiments, args.results, args.readme))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
