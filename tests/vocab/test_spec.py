"""The tokenizer config group: every YAML composes into TokenizerConfig; bad values name their key."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tokentune.errors import ConfigError
from tokentune.vocab.spec import TokenizerConfig

from .helpers import ROOT

YAMLS = sorted((ROOT / "conf" / "tokenizer").glob("*.yaml"))


def compose(*dotlist: str, yaml: Path | None = None) -> TokenizerConfig:
    """What Hydra does for `tokenizer=<yaml> tokenizer.<key>=<value>`: schema ← yaml ← overrides."""
    parts = [OmegaConf.structured(TokenizerConfig)]
    if yaml is not None:
        parts.append(OmegaConf.load(yaml))
    parts.append(OmegaConf.from_dotlist(list(dotlist)))
    return OmegaConf.to_object(OmegaConf.merge(*parts))


def test_the_config_group_has_every_named_tokenizer():
    names = {p.stem for p in YAMLS}
    assert {"bpe8k", "bpe16k", "bpe32k", "wordpiece32k", "unigram32k", "byte_bpe32k", "extend"} <= names


@pytest.mark.parametrize("yaml", YAMLS, ids=[p.stem for p in YAMLS])
def test_every_yaml_composes_and_names_itself(yaml):
    spec = compose(yaml=yaml)
    assert spec.name == yaml.stem
    size = re.search(r"(\d+)k$", yaml.stem)
    if size:
        assert spec.vocab_size == int(size.group(1)) * 1000 and spec.kind != "pretrained"


def test_extend_yaml_adds_2000_words_to_the_pretrained_vocabulary():
    spec = compose(yaml=ROOT / "conf" / "tokenizer" / "extend.yaml")
    assert (spec.kind, spec.mode, spec.extend_tokens, spec.trains) == ("pretrained", "extend", 2000, True)


def test_defaults_mean_the_family_decides():
    spec = TokenizerConfig()
    assert (spec.kind, spec.mode, spec.trains) == ("pretrained", "replace", False)
    assert spec.normalizer is spec.pre_tokenizer is spec.special_tokens is None
    assert spec.corpus.files == [] and spec.corpus.include_task


@pytest.mark.parametrize("override, key, text", [
    ("kind=sentencepiece", "tokenizer.kind", "'sentencepiece' is not one of"),
    ("mode=merge", "tokenizer.mode", "'merge' is not one of"),
    ("vocab_size=0", "tokenizer.vocab_size", "must be a positive number of tokens, got 0"),
    # breakage: the bound removed: the BPE trainer's memory reservation aborted the process
    ("vocab_size=1048577", "tokenizer.vocab_size", "1,048,577 is above 1,048,576, the most tokentune builds"),
    ("min_frequency=-1", "tokenizer.min_frequency", "must be 0 or more"),
    ("extend_tokens=0", "tokenizer.extend_tokens", "must be a positive number"),
    ("induction=mean", "tokenizer.induction", "'mean' is not one of"),
    ("normalizer=nfkc+shout", "tokenizer.normalizer", "'nfkc+shout' is not null or one of"),
    ("pre_tokenizer=byte_level+bert", "tokenizer.pre_tokenizer", "byte_level must come last"),
    ("decoder=wordpiece+byte_level", "tokenizer.decoder", "is not null or one of"),
    ("special_tokens=[a,a]", "tokenizer.special_tokens", "has duplicates"),
    ("corpus.max_chars=0", "tokenizer.corpus.max_chars", "must be a positive number of characters"),
    ("corpus.include_task=false", "tokenizer.corpus", "needs at least one file"),
])
def test_bad_values_fail_at_composition_naming_the_key(override, key, text):
    with pytest.raises(ConfigError) as e:
        compose("kind=bpe", override) if not override.startswith("kind") else compose(override)
    assert e.value.key == key and str(e.value).startswith(key + ":") and text in str(e.value)


def test_extend_needs_kind_pretrained():
    expected = r"tokenizer.mode: extend adds whole words .* needs tokenizer.kind=pretrained \(got kind=bpe\)"
    with pytest.raises(ConfigError, match=expected):
        compose("kind=bpe", "mode=extend")


def test_a_type_error_fails_in_omegaconf_before_post_init():
    with pytest.raises(Exception, match="vocab_size"):
        compose("vocab_size=lots")


def test_spec_module_is_import_light():
    code = ("import sys, tokentune.vocab, tokentune.vocab.spec; "
            "print(sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.stdout.strip() == "[]"
