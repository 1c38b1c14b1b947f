"""Scaling curves of tokentune's GPU path: samples/s against batch size and against model size
(SST-2), and real tokens/s against sequence length on a long-text task (RTE).

usage (repository root, GLUE_DIR set, on a GPU machine):
    python experiments/bench/scaling.py
    python experiments/bench/scaling.py --device cpu --sizes tiny --batch-sizes 4,8 --lengths 32,64 \
        --task demo --long-task demo --steps 2 --warmup 1          # smoke run

Each point is one `bench.py --setups tokentune` measurement (same warm-up and timed window);
writes scaling.json, scaling.md and scaling.png beside this file (or --out).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402


def point(args, size: str, batch: int, task: str, length: int) -> dict:
    argv = ["--setups", "tokentune", "--device", args.device, "--size", size, "--task", task,
            "--batch-size", str(batch), "--max-length", str(length), "--steps", str(args.steps),
            "--warmup", str(args.warmup), "--out", str(args.out / "points"),
            "--name", f"{task}-{size}-b{batch}-l{length}", *args.override]
    report = bench.main(argv)
    return {"size": size, "batch_size": batch, "task": task, "max_length": length,
            **report["results"]["tokentune"], "environment": report["environment"]}


def plot(curves: dict, path: Path, device: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    panels = [("batch", "batch_size", "samples_per_s", "batch size", "samples/s"),
              ("size", "size", "samples_per_s", "model size", "samples/s"),
              ("length", "max_length", "real_tokens_per_s", "max length (tokens)", "real tokens/s")]
    for ax, (key, x, y, xlabel, ylabel) in zip(axes, panels):
        points = curves[key]
        xs = [str(p[x]) for p in points]
        ax.plot(xs, [p[y] for p in points], marker="o")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    fig.suptitle(f"tokentune training throughput ({device})")
    fig.savefig(path, format="png", dpi=120)


def markdown(curves: dict, env: dict) -> str:
    lines = ["# Scaling of tokentune's training throughput", "", f"- device: {env['device']}",
             f"- commit: {env['commit']}",
             "- packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()), "",
             "| curve | task | model size | batch | max length | samples/s | real tokens/s | padding |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for key, points in curves.items():
        for p in points:
            lines.append(f"| {key} | {p['task']} | {p['size']} | {p['batch_size']} | {p['max_length']} | "
                         f"{p['samples_per_s']:,.0f} | {p['real_tokens_per_s']:,.0f} | {p['padding_share']:.0%} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-sizes", default="32,64,128,256,512")
    p.add_argument("--sizes", default="minilm,base,large")
    p.add_argument("--lengths", default="64,128,256,512")
    p.add_argument("--size", default="base", help="model size of the batch and length curves")
    p.add_argument("--batch-size", type=int, default=32, help="batch of the size and length curves")
    p.add_argument("--task", default="sst2")
    p.add_argument("--long-task", default="rte")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--out", type=Path, default=Path(__file__).parent)
    p.add_argument("override", nargs="*", help="extra tokentune overrides (key=value)")
    args = p.parse_intermixed_args(argv)
    ints = lambda text: [int(v) for v in text.split(",")]  # noqa: E731
    sizes = args.sizes.split(",")
    size = args.size if args.size in sizes else sizes[0]
    curves = {
        "batch": [point(args, size, b, args.task, 128) for b in ints(args.batch_sizes)],
        "size": [point(args, s, args.batch_size, args.task, 128) for s in sizes],
        "length": [point(args, size, args.batch_size, args.long_task, n) for n in ints(args.lengths)],
    }
    env = curves["batch"][0]["environment"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scaling.json").write_text(json.dumps({"environment": env, "curves": curves}, indent=2) + "\n")
    (args.out / "scaling.md").write_text(markdown(curves, env))
    plot(curves, args.out / "scaling.png", env["device"])
    print(markdown(curves, env))
    return curves


if __name__ == "__main__":
    main()
