"""Does a model fit its family and task? Checked before a fine-tuning method touches it.

The families themselves are tokentune.model.families (FAMILIES is imported here under the path
that older code used).
"""
from __future__ import annotations

from tokentune.errors import UserError
from tokentune.model.families import FAMILIES, Family  # noqa: F401


def check_model(family: Family, kind, model) -> None:
    """Fail early, with the mismatch named, when the model does not fit the family and the task
    kind (a tokentune.task.kind.TaskKind)."""
    if not kind.supported_by(family):
        raise UserError(
            f"task kind {kind.name!r} is not supported for {family.name} models "
            f"(supported: {', '.join(family.task_kinds)})"
        )
    model_type = getattr(model.config, "model_type", None)
    if model_type != family.model_type:
        raise UserError(f"expected a {family.name} model (model_type {family.model_type!r}), got {model_type!r}")
    head = kind.head(family, model)
    if not hasattr(model, head):
        raise UserError(
            f"a {family.name} {kind.name} model needs a '{head}' head; got {type(model).__name__}"
        )
