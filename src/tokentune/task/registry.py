"""The task kinds tokentune knows: `task.kind` in a task YAML is a key of KINDS.

A new kind is one module beside this one (a TaskKind subclass), its line here and its tests
(docs/extending.md).
"""
from __future__ import annotations

from tokentune.errors import ConfigError
from tokentune.model.families import FAMILY_HEADS
from tokentune.task.causal_lm import CausalLM
from tokentune.task.extractive_qa.kind import ExtractiveQA
from tokentune.task.kind import TaskKind
from tokentune.task.sequence import Classification, Regression
from tokentune.task.token_classification.kind import TokenClassification

KINDS: dict[str, TaskKind] = {kind.name: kind for kind in (Classification(), Regression(), CausalLM(),
                                                           TokenClassification(), ExtractiveQA())}
# every task head of every family and kind: never a LoRA target, and what the parameter report
# counts as head (a question-answering head is qa_outputs, a name no family's entry holds)
HEAD_NAMES = FAMILY_HEADS | frozenset(name for kind in KINDS.values() for name in kind.head_names)


def get_kind(name: str) -> TaskKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError("task.kind", f"'{name}' is not one of {tuple(KINDS)}") from None
