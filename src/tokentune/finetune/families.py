"""Does a model fit its family and task? Checked before a fine-tuning method touches it.

The families themselves are tokentune.model.families (FAMILIES is imported here under the path
that older code used).
"""
from __future__ import annotations

from tokentune.errors import UserError
from tokentune.model.families import FAMILIES, Family  # noqa: F401


def check_model(family: Family, task_kind: str, model) -> None:
    """Fail early, with the mismatch named, when the model does not fit the family and task."""
    if task_kind not in family.task_kinds:
        raise UserError(
            f"task kind {task_kind!r} is not supported for {family.name} models "
            f"(supported: {', '.join(family.task_kinds)})"
        )
    model_type = getattr(model.config, "model_type", None)
    if model_type != family.model_type:
        raise UserError(f"expected a {family.name} model (model_type {family.model_type!r}), got {model_type!r}")
    head = family.lm_head if task_kind == "causal_lm" else family.cls_head
    if not hasattr(model, head):
        raise UserError(
            f"a {family.name} {task_kind} model needs a '{head}' head; got {type(model).__name__}"
        )
