"""Schemas: defaults, validation messages, Hydra composition of conf/finetune, import cost."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from tokentune.errors import ConfigError
from tokentune.finetune.config import (
    SCHEMAS,
    AdapterConfig,
    FullConfig,
    LoraConfig,
    PrefixConfig,
    parse_config,
)

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_default_learning_rates_per_method():
    assert {m: cls().lr for m, cls in SCHEMAS.items()} == {
        "full": 5e-5,
        "adapter": 5e-4,
        "lora": 5e-4,
        "prefix": 5e-3,
        "ia3": 1e-2,
    }
    assert all(cls().method == m for m, cls in SCHEMAS.items())


@pytest.mark.parametrize(
    "build, key, text",
    [
        (lambda: LoraConfig(r=0), "finetune.r", "LoRA rank must be a positive integer (got 0)"),
        (lambda: LoraConfig(alpha=0), "finetune.alpha", "must be positive"),
        (lambda: LoraConfig(dropout=1.0), "finetune.dropout", "must be in [0, 1)"),
        (lambda: LoraConfig(bias="some"), "finetune.bias", "none, all, lora_only"),
        (lambda: LoraConfig(target_modules=[]), "finetune.target_modules", "non-empty list"),
        (lambda: AdapterConfig(placement="middle"), "finetune.placement", "pfeiffer, houlsby"),
        (lambda: AdapterConfig(bottleneck=0), "finetune.bottleneck", "positive integer"),
        (lambda: AdapterConfig(reduction_factor=0), "finetune.reduction_factor", "positive integer"),
        (lambda: AdapterConfig(non_linearity="softmax"), "finetune.non_linearity", "relu, gelu, swish, tanh"),
        (lambda: PrefixConfig(num_virtual_tokens=0), "finetune.num_virtual_tokens", "positive integer"),
        (lambda: FullConfig(lr=0), "finetune.lr", "positive learning rate"),
    ],
)
def test_bad_values_name_the_key(build, key, text):
    with pytest.raises(ConfigError) as info:
        build()
    assert info.value.key == key
    assert str(info.value).startswith(key + ": ")
    assert text in str(info.value)


def test_parse_config_from_mapping():
    cfg = parse_config({"method": "lora", "r": 4, "target_modules": ["query"]})
    assert cfg == LoraConfig(r=4, target_modules=["query"])
    assert parse_config(cfg) is cfg
    with pytest.raises(ConfigError, match=r"finetune.method: unknown method 'qlora'; choose one of full"):
        parse_config({"method": "qlora"})
    with pytest.raises(ConfigError, match=r"finetune.rank: not a setting of finetune=lora"):
        parse_config({"method": "lora", "rank": 4})
    with pytest.raises(ConfigError, match=r"finetune.r: LoRA rank"):
        parse_config({"method": "lora", "r": 0})


@pytest.fixture(scope="module")
def hydra_conf():
    # The same registration the lead's config.py does.
    for method, schema in SCHEMAS.items():
        ConfigStore.instance().store(group="finetune", name=f"{method}_schema", node=schema)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield


@pytest.mark.parametrize("method", sorted(SCHEMAS))
def test_yaml_composes_into_its_schema(hydra_conf, method):
    cfg = compose(overrides=[f"+finetune={method}"])
    obj = OmegaConf.to_object(cfg.finetune)
    # The YAML repeats the schema defaults so a reader sees them; they must agree.
    assert obj == SCHEMAS[method]()
    assert parse_config(cfg.finetune) == obj


def test_yaml_overrides_are_typed_and_validated(hydra_conf):
    cfg = compose(overrides=["+finetune=lora", "finetune.target_modules=[query,key]", "finetune.r=4"])
    assert OmegaConf.to_object(cfg.finetune) == LoraConfig(r=4, target_modules=["query", "key"])
    cfg = compose(overrides=["+finetune=lora", "finetune.r=0"])
    with pytest.raises(ConfigError, match=r"^finetune.r: "):
        OmegaConf.to_object(cfg.finetune)
    with pytest.raises(Exception, match="finetune.rank"):
        compose(overrides=["+finetune=lora", "finetune.rank=3"])


def test_config_import_stays_light():
    code = (
        "import sys, tokentune.finetune, tokentune.finetune.config; "
        "heavy = [m for m in ('torch', 'peft', 'transformers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": src})
