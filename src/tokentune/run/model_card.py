"""model/README.md: the exported model's card, written from the run that made it.

What a reader of a model folder needs without the run directory: where the weights came from
(base model, fine-tuning method, vocabulary), what they were trained on and how (task, rows per
split, hyper-parameters), how well they do (validation and test metrics), and where they were
made (commit, device, package versions).
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from tokentune.atomic import write_atomic
from tokentune.config import TrainConfig
from tokentune.run.provenance import environment, markdown_lines
from tokentune.run.results import RunResults
from tokentune.task import get_kind


def _metrics(values: dict) -> str:
    # results.json writes a non-finite number as null (tokentune.atomic.json_text)
    return ", ".join(f"{k} {v:.4f}" if v is not None else f"{k} not finite"
                     for k, v in sorted(values.items())) or "none"


def how_to_load(cfg: TrainConfig) -> list[str]:
    from tokentune.finetune import get_method

    return get_method(cfg.finetune.method).how_to_load(cfg, "path/to/this/folder", get_kind(cfg.task.kind))


def model_card(cfg: TrainConfig, results: RunResults, rows: dict[str, int]) -> str:
    base = cfg.model.pretrained or f"{cfg.model.name} (randomly initialised: {json.dumps(cfg.model.config, default=str)})"
    method = {k: v for k, v in asdict(cfg.finetune).items() if k != "method"}
    vocab = results.vocabulary
    params = results.parameters
    lines = [
        f"# {cfg.task.name}: {cfg.model.name} fine-tuned with {cfg.finetune.method}",
        "",
        *how_to_load(cfg),
        "",
        "## Model",
        f"- base model: {base}",
        f"- fine-tuning: {cfg.finetune.method} {json.dumps(method, default=str)}",
        f"- vocabulary: tokenizer={cfg.tokenizer.name}, {vocab.get('vocab_size', 0):,} tokens",
        f"- parameters: {params['trainable']:,} trained of {params['total']:,}",
        "",
        "## Training",
        f"- task: {get_kind(cfg.task.kind).card_task(cfg.task)}",
        "- texts (lines, for a causal LM): " + ", ".join(f"{split} {n:,}" for split, n in rows.items()),
        f"- optimizer: AdamW, lr {cfg.optimizer.lr:g}, warm-up {cfg.optimizer.warmup_ratio:g}, "
        f"weight decay {cfg.optimizer.weight_decay:g}",
        f"- batch size {cfg.data.batch_size}, max length {cfg.data.max_length}, "
        f"{results.epochs} epochs ({results.steps:,} steps), precision {cfg.trainer.precision}, "
        f"seed {cfg.seed}",
        "",
        "## Results (best checkpoint)",
        f"- validation: {_metrics(results.validation)}",
        f"- test: {_metrics(results.test)}",
        "",
        "## Provenance",
        *markdown_lines(environment()),
    ]
    return "\n".join(lines) + "\n"


def write_model_card(cfg: TrainConfig, results: RunResults, rows: dict[str, int], folder: Path) -> Path:
    path = folder / "README.md"
    write_atomic(path, model_card(cfg, results, rows))
    return path
