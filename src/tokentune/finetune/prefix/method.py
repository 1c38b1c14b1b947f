"""Prefix tuning through peft: `model/` is peft's format."""
from __future__ import annotations

from tokentune.errors import ConfigError
from tokentune.finetune.peft_method import PeftMethod
from tokentune.finetune.prefix.config import PrefixConfig


class Prefix(PeftMethod):
    name = "prefix"
    schema = PrefixConfig
    virtual_tokens = True
    packing_refused = ("prefix tuning puts its virtual tokens in front of every row, which sequences packed "
                       "into one row cannot share; use finetune=lora or adapter, or data.packing=false")

    def check_family(self, family):
        if not family.prefix:
            raise ConfigError("finetune", f"prefix tuning feeds its virtual tokens to every layer as a "
                              f"key/value cache, which {family.name} models do not take "
                              "(tokentune/model/families.py); use finetune=lora, adapter or full")
        from tokentune.compat.transformers import CACHE_RENAMED, installed_version

        if installed_version() >= CACHE_RENAMED:
            found = ".".join(map(str, installed_version()))
            raise ConfigError("finetune", f"prefix tuning: transformers {found} models take `cache`, where "
                              "peft passes prefix tuning's `past_key_values`; install "
                              "'transformers<5.24' (tokentune's bound) or use finetune=lora or adapter")

    def apply(self, cfg, model, family, kind, max_length):
        from tokentune.finetune.prefix.model import build_prefix

        return build_prefix(model, cfg, kind, max_length)

    def owns_parameter(self, parts):
        return "prompt_encoder" in parts
