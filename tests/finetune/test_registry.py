"""The method registry: one object per fine-tuning method, asked by every other module."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tokentune.config import validate
from tokentune.errors import ConfigError
from tokentune.finetune import METHODS, get_method

SRC = Path(__file__).resolve().parents[2] / "src" / "tokentune"
CONF = Path(__file__).resolve().parents[2] / "conf" / "finetune"


def test_an_unknown_method_is_refused_in_one_line_naming_the_known_ones(compose):
    with pytest.raises(ConfigError) as err:
        validate(compose("finetune=lora", "finetune.method=bitfit"))
    assert str(err.value) == f"finetune.method: unknown method 'bitfit'; choose one of {', '.join(METHODS)}"
    with pytest.raises(ConfigError) as err:
        get_method("bitfit")
    assert "\n" not in str(err.value)


def test_no_module_outside_a_methods_folder_compares_a_method_name():
    # a method's name in a comparison or a lookup table means its behaviour lives outside its folder
    names = "|".join(METHODS)
    pattern = re.compile(rf"""(==|!=|\bin\b)\s*\(?["']({names})["']|["']({names})["']\s*(==|!=|:)""")
    own = {SRC / "finetune" / name for name in METHODS}
    offenders = [f"{path.relative_to(SRC)}:{n}: {line.strip()}"
                 for path in SRC.rglob("*.py") if not own & set(path.parents)
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 # FSDP's state_dict_type="full" (and comments on it) shares full fine-tuning's name
                 if pattern.search(line) and "state_dict_type" not in line and not line.strip().startswith("#")]
    assert offenders == []


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_method_is_one_folder_one_yaml_and_one_test_file(name):
    method = METHODS[name]
    assert method.name == name and method.schema().method == name
    assert type(method).__module__ == f"tokentune.finetune.{name}.method"
    assert method.schema.__module__ == f"tokentune.finetune.{name}.config"
    option = yaml.safe_load((CONF / f"{name}.yaml").read_text())
    assert option["method"] == name and option["defaults"][0] == f"{name}_schema"
    assert (Path(__file__).parent / f"test_{name}.py").is_file(), f"add tests/finetune/test_{name}.py"
