"""The fine-tuning methods tokentune knows: `method` in a conf/finetune YAML is a key of METHODS.

A new method is one folder beside the others (`<method>/config.py`, its schema; `<method>/method.py`,
a Method subclass), its line here, conf/finetune/<method>.yaml and tests/finetune/test_<method>.py
(docs/extending.md).
"""
from __future__ import annotations

from tokentune.errors import ConfigError
from tokentune.finetune.adapter.method import Adapter
from tokentune.finetune.full.method import Full
from tokentune.finetune.ia3.method import Ia3
from tokentune.finetune.lora.method import Lora
from tokentune.finetune.method import Method
from tokentune.finetune.prefix.method import Prefix

METHODS: dict[str, Method] = {method.name: method for method in (Full(), Adapter(), Lora(), Prefix(), Ia3())}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError("finetune.method", f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None
