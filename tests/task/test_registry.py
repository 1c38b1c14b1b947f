"""The task-kind registry: one object per kind, asked by every other module."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tokentune.config import validate
from tokentune.errors import ConfigError
from tokentune.model.families import FAMILIES
from tokentune.task import KINDS, get_kind

SRC = Path(__file__).resolve().parents[2] / "src" / "tokentune"


def test_an_unknown_kind_is_refused_in_one_line_naming_the_known_ones(compose):
    with pytest.raises(ConfigError) as err:
        validate(compose("task=demo", "task.kind=tagging"))
    assert str(err.value) == f"task.kind: 'tagging' is not one of {tuple(KINDS)}"


def test_no_module_outside_the_task_package_compares_a_kind_name():
    # a kind's name in a comparison or a lookup table means its behaviour lives outside its module
    names = "|".join(KINDS)
    pattern = re.compile(rf"""(==|!=|\bin\b)\s*\(?["']({names})["']|["']({names})["']\s*(==|!=|:)""")
    offenders = [f"{path.relative_to(SRC)}:{n}: {line.strip()}"
                 for path in SRC.rglob("*.py") if "task" not in path.relative_to(SRC).parts[:1]
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 # transformers' own config.problem_type shares the name "regression"
                 if pattern.search(line) and "problem_type" not in line]
    assert offenders == []


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_family_takes_the_kinds_whose_head_it_has(family):
    fam = FAMILIES[family]
    assert set(fam.task_kinds) == ({"classification", "regression", "token_classification", "extractive_qa"}
                                   | ({"causal_lm"} if fam.lm_head else set()))
    assert get_kind("causal_lm").supported_by(fam) == (fam.lm_head is not None)


def test_each_kind_names_a_transformers_head_and_a_peft_task_type():
    import peft
    import transformers

    for kind in KINDS.values():
        assert getattr(transformers, kind.auto_class).__name__ == kind.auto_class
        assert getattr(peft.TaskType, kind.peft_task_type)
