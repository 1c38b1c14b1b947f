"""Full fine-tuning: every weight trains, the checkpoint is the whole model, the export plain."""
from __future__ import annotations

from tokentune.finetune import get_method
from tokentune.finetune.apply import apply
from tokentune.finetune.report import parameter_report

from .models import tiny_bert


def test_every_weight_trains_and_none_is_the_methods():
    model = apply({"method": "full"}, tiny_bert().requires_grad_(False), family="bert",
                  task_kind="classification")
    assert all(p.requires_grad for p in model.parameters())
    report = parameter_report(model)
    assert report["trainable"] == report["total"] and report["groups"]["method"]["total"] == 0
    full = get_method("full")
    assert full.whole_model_checkpoint and full.transformers_folder and full.merged(model) is model
