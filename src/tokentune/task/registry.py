"""The task kinds tokentune knows: `task.kind` in a task YAML is a key of KINDS.

A new kind is one module beside this one (a TaskKind subclass), its line here and its tests
(docs/extending.md).
"""
from __future__ import annotations

from tokentune.errors import ConfigError
from tokentune.task.causal_lm import CausalLM
from tokentune.task.extractive_qa.kind import ExtractiveQA
from tokentune.task.kind import TaskKind
from tokentune.task.sequence import Classification, Regression
from tokentune.task.token_classification.kind import TokenClassification

KINDS: dict[str, TaskKind] = {kind.name: kind for kind in (Classification(), Regression(), CausalLM(),
                                                           TokenClassification(), ExtractiveQA())}


def get_kind(name: str) -> TaskKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError("task.kind", f"'{name}' is not one of {tuple(KINDS)}") from None
