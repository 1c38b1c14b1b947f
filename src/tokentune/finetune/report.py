"""Counting parameters per group, for the log and results.json."""
from __future__ import annotations

from torch import nn

from tokentune.finetune.registry import METHODS
from tokentune.task.registry import HEAD_NAMES

GROUPS = ("embeddings", "head", "method", "other")


def _base_model(model: nn.Module) -> nn.Module:
    # A PeftModel wraps the transformers model; `get_base_model` unwraps it.
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _group(name: str, param: nn.Parameter, embedding: nn.Parameter | None) -> str:
    parts = name.split(".")
    # a report is of a model alone: whichever method added a parameter claims it
    if any(method.owns_parameter(parts) for method in METHODS.values()):
        return "method"
    if param is embedding:
        return "embeddings"
    if any(p in HEAD_NAMES for p in parts):
        return "head"
    return "other"


def parameter_report(model: nn.Module) -> dict:
    """{trainable, total, trainable_percent, groups: {embeddings|head|method|other: {trainable, total}}}.

    Shared tensors count once (GPT-2's LM head is the embedding matrix). `embeddings` is the
    input word-embedding matrix; position/type embeddings count as `other`. Under peft the head
    appears twice (frozen original + trained copy), as it does in memory.
    """
    get_embeddings = getattr(_base_model(model), "get_input_embeddings", None)
    embedding = get_embeddings().weight if get_embeddings is not None else None
    groups = {g: {"trainable": 0, "total": 0} for g in GROUPS}
    for name, param in model.named_parameters():  # deduplicates shared parameters
        counts = groups[_group(name, param, embedding)]
        counts["total"] += param.numel()
        if param.requires_grad:
            counts["trainable"] += param.numel()
    trainable = sum(g["trainable"] for g in groups.values())
    total = sum(g["total"] for g in groups.values())
    return {
        "trainable": trainable,
        "total": total,
        "trainable_percent": 100.0 * trainable / total if total else 0.0,
        "groups": groups,
    }


def format_parameter_report(report: dict) -> str:
    """One log line: 'trainable 74.5k / 22.8M (0.33%) | embeddings 0/11.7M head ...'."""

    def short(n: int) -> str:
        for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if n >= size:
                return f"{n / size:.1f}{unit}"
        return str(n)

    parts = [f"{g} {short(c['trainable'])}/{short(c['total'])}" for g, c in report["groups"].items()]
    head = f"trainable {short(report['trainable'])} / {short(report['total'])} ({report['trainable_percent']:.2f}%)"
    return head + " | " + "  ".join(parts)
