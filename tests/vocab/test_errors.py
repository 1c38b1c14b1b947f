"""Bad input: one clear message each, naming the key, the file and what to do."""
from __future__ import annotations

import re

import pytest

from tokentune.errors import ConfigError, UserError


@pytest.mark.parametrize("kind, family", [("bpe", "bert"), ("wordpiece", "bert"), ("unigram", "bert"),
                                          ("byte_bpe", "gpt2")])
def test_vocab_size_below_alphabet_plus_specials(build, tmp_path, kind, family):
    with pytest.raises(ConfigError) as e:
        build(family, kind=kind, vocab_size=30, cache_dir=tmp_path)
    msg = str(e.value)
    assert msg.startswith("tokenizer.vocab_size: 30 is smaller than this corpus's alphabet plus special tokens (")
    needed = int(msg.split("at least ")[1].replace(",", ""))
    n_special = 5 if family == "bert" else 2
    assert f"{needed:,} = {needed - n_special:,} symbols + {n_special} special tokens" in msg
    assert needed > 30 and (family != "gpt2" or needed == 256 + 2)
    # the size it names is enough (for BPE/WordPiece exactly what the trainer keeps)
    tok, info = build(family, kind=kind, vocab_size=needed, cache_dir=tmp_path)
    assert info.vocab_size <= needed


def test_empty_corpus(build, tmp_path):
    with pytest.raises(ConfigError, match=r"^tokenizer.corpus: the corpus is empty: no non-blank text in "
                                          r"task train split \(0 texts\); give the task's train split"):
        build("bert", kind="bpe", corpus_texts=["", "  ", "\n"], cache_dir=tmp_path)


def test_missing_corpus_file(build, tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(ConfigError) as e:
        build("bert", kind="bpe", corpus={"files": [str(missing)]}, cache_dir=tmp_path)
    assert str(e.value) == (f"tokenizer.corpus.files: {missing} does not exist; fix the path or remove "
                            "it from tokenizer.corpus.files")


def test_relative_missing_file_says_where_it_was_looked_for(build, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"nope.txt does not exist \\(relative paths are read from {tmp_path}\\)"):
        build("bert", kind="bpe", corpus={"files": ["nope.txt"]}, cache_dir=tmp_path)


def test_undecodable_bytes_name_file_line_and_column(build, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"first line\nsecond line\ncaf" + b"\xe9 au lait\n")
    with pytest.raises(ConfigError) as e:
        build("bert", kind="bpe", corpus={"files": [str(bad)]}, cache_dir=tmp_path)
    assert str(e.value) == (f"tokenizer.corpus.files: {bad}: line 3 is not valid UTF-8 (byte 0xe9 at "
                            "column 4); re-encode the file as UTF-8, e.g. `iconv -f latin1 -t utf-8`")


def test_unknown_family(build, minilm, corpus, tmp_path):
    from tokentune.vocab.build import load_or_build
    from tokentune.vocab.spec import TokenizerConfig

    with pytest.raises(ConfigError, match="model.family: 't5' is not one of"):
        load_or_build(TokenizerConfig(kind="bpe"), base_tokenizer=minilm, family="t5", corpus=corpus,
                      cache_dir=tmp_path)


@pytest.mark.parametrize("fields, text", [
    (dict(kind="bpe", decoder="metaspace"), "tokenizer.decoder: metaspace needs a metaspace pre_tokenizer"),
    (dict(kind="unigram", decoder="bpe"), "tokenizer.decoder: decoder bpe ('</w>' suffixes) is for kind bpe"),
    (dict(kind="bpe", decoder="byte_level"), "tokenizer.decoder: byte_level decodes byte symbols"),
    (dict(kind="byte_bpe", pre_tokenizer="bert"), "tokenizer.pre_tokenizer: kind byte_bpe needs a pre_tokenizer "
                                                  "ending in byte_level, not 'bert'"),
    (dict(kind="bpe", special_tokens=["[PAD]", "[UNK]", "[SEP]"]),
     "tokenizer.special_tokens: this bert bpe tokenizer needs '[CLS]' (cls_token)"),
])
def test_parts_that_do_not_fit_together(build, tmp_path, fields, text):
    with pytest.raises(ConfigError, match=re.escape(text)):
        build("bert", cache_dir=tmp_path, **fields)


def test_errors_are_user_errors():
    assert issubclass(ConfigError, UserError)
