"""What the fine-tuning methods need to know about each model family, in one place."""
from __future__ import annotations

from dataclasses import dataclass

from tokentune.errors import UserError

TASK_KINDS = ("classification", "regression", "causal_lm")


@dataclass(frozen=True)
class Family:
    name: str
    model_type: str  # transformers' `config.model_type` (MiniLM checkpoints say "bert" too)
    task_kinds: tuple[str, ...]
    cls_head: str  # attribute of the *ForSequenceClassification model holding the head
    lora_targets: tuple[str, ...]
    # GPT-2 stores its projections as transformers' Conv1D, whose weight is (in, out).
    fan_in_fan_out: bool
    blocks: str  # path from `model.base_model` to the list of transformer blocks
    # Path, inside one block, of the last op before each residual add (its output dropout).
    attention_site: str
    ffn_site: str


FAMILIES: dict[str, Family] = {
    "bert": Family(
        name="bert",
        model_type="bert",
        task_kinds=("classification", "regression"),
        cls_head="classifier",
        lora_targets=("query", "value"),
        fan_in_fan_out=False,
        blocks="encoder.layer",
        attention_site="attention.output.dropout",
        ffn_site="output.dropout",
    ),
    "gpt2": Family(
        name="gpt2",
        model_type="gpt2",
        task_kinds=("classification", "regression", "causal_lm"),
        cls_head="score",
        lora_targets=("c_attn",),
        fan_in_fan_out=True,
        blocks="h",
        attention_site="attn.resid_dropout",
        ffn_site="mlp.dropout",
    ),
}

HEAD_NAMES = frozenset({"classifier", "score", "lm_head"})


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise UserError(f"model family {name!r} has no fine-tuning support; supported: {', '.join(FAMILIES)}")
    return FAMILIES[name]


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
    head = "lm_head" if task_kind == "causal_lm" else family.cls_head
    if not hasattr(model, head):
        raise UserError(
            f"a {family.name} {task_kind} model needs a '{head}' head; got {type(model).__name__}"
        )
