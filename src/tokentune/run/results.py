"""results.json: what a run achieved, written atomically, plus a one-screen summary."""
from __future__ import annotations

from pathlib import Path

from tokentune.atomic import write_json


def write_json_atomic(obj, path: Path) -> None:
    """Strict JSON: a non-finite metric is null, with "nan"/"inf" beside it under "non_finite"."""
    write_json(path, obj, indent=2, sort_keys=True, default=float)


def metrics_to_floats(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


def summary(results: dict) -> str:
    lines = [f"run: {results['run_dir']}",
             f"task={results['task']} model={results['model']} finetune={results['finetune']} "
             f"tokenizer={results['tokenizer']}"]
    for split in ("validation", "test"):
        if results.get(split):
            shown = ", ".join(f"{k.split('/', 1)[1]}={v:.4f}" if v is not None else f"{k.split('/', 1)[1]}=null"
                              for k, v in sorted(results[split].items()))
            lines.append(f"{split}: {shown}")
    p = results["parameters"]
    lines.append(f"parameters: {p['trainable']:,} trainable of {p['total']:,}; "
                 f"wall time {results['wall_time_s']:.1f} s")
    return "\n".join(lines)
