"""Parameter report: groups add up, tied weights count once, and the design anchors' counts."""
from __future__ import annotations

import pytest
import torch
from transformers import BertForSequenceClassification

from tokentune.finetune.apply import apply
from tokentune.finetune.report import format_parameter_report, parameter_report

from .models import SETUPS
from .reference import minilm_config


def _unique_count(model, trainable_only=False) -> int:
    seen = {id(p): p for p in model.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in seen.values())


@pytest.mark.parametrize("setup", sorted(SETUPS))
@pytest.mark.parametrize("method", ["full", "adapter", "lora", "prefix"])
def test_groups_add_up(setup, method):
    family, task_kind, make = SETUPS[setup]
    model = apply({"method": method}, make(), family=family, task_kind=task_kind, train_embeddings=True)
    report = parameter_report(model)
    assert report["total"] == _unique_count(model)
    assert report["trainable"] == _unique_count(model, trainable_only=True)
    groups = report["groups"]
    assert sum(g["total"] for g in groups.values()) == report["total"]
    assert groups["embeddings"]["total"] == groups["embeddings"]["trainable"] == 100 * 32
    assert (groups["method"]["total"] > 0) == (method != "full")
    assert groups["method"]["trainable"] == groups["method"]["total"]
    if method != "full":
        assert groups["other"]["trainable"] == 0
        assert groups["head"]["trainable"] == (0 if task_kind == "causal_lm" else 32 * 2 + (2 if family == "bert" else 0))
    line = format_parameter_report(report)
    assert line.startswith(f"trainable {report['trainable'] / 1e3:.1f}k / ") and "embeddings 3.2k/3.2k" in line


@pytest.mark.parametrize(
    "settings, trainable",
    [
        # design.md section 5: peft LoRA 74.5k, peft prefix 92.9k, AdapterHub SeqBn (Pfeiffer, /16) 113.8k
        ({"method": "lora", "r": 8}, 74_498),
        ({"method": "prefix", "num_virtual_tokens": 20}, 92_930),
        ({"method": "adapter", "placement": "pfeiffer", "reduction_factor": 16}, 113_810),
    ],
)
def test_minilm_trainable_counts_match_the_reference_implementations(settings, trainable):
    torch.manual_seed(0)
    model = BertForSequenceClassification(minilm_config())  # counts only: random weights will do
    report = parameter_report(apply(settings, model, family="bert", task_kind="classification"))
    assert report["trainable"] == trainable
