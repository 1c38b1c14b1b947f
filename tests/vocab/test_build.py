"""Building vocabularies: every kind, both families, replace and extend, real sizes, determinism."""
from __future__ import annotations

import pytest
from transformers import PreTrainedTokenizerFast

from tokentune.vocab.build import load_or_build_info
from tokentune.vocab.spec import TokenizerConfig

from .helpers import EOT, read_sst2, sst2_dir

BERT_KINDS = [dict(kind="bpe"), dict(kind="bpe", decoder="bpe"), dict(kind="bpe", decoder="wordpiece"),
              dict(kind="wordpiece"), dict(kind="unigram"), dict(kind="unigram", pre_tokenizer="bert+metaspace"),
              dict(kind="byte_bpe")]
GPT2_KINDS = [dict(kind="byte_bpe"), dict(kind="bpe"), dict(kind="wordpiece"), dict(kind="unigram")]


def _id(kw: dict) -> str:
    return "-".join(str(v) for v in kw.values())


@pytest.mark.parametrize("kw", BERT_KINDS, ids=_id)
def test_bert_family_tokenizer_pairs_like_bert(build, kw):
    tok, info = build("bert", vocab_size=500, **kw)
    assert isinstance(tok, PreTrainedTokenizerFast) and info.built is not None
    assert (tok.pad_token, tok.unk_token, tok.cls_token, tok.sep_token, tok.mask_token) == \
        ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    assert tok.convert_ids_to_tokens(list(range(5))) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    enc = tok(["the film was great", "boring"], ["a story", "never"], truncation=True, max_length=8)
    for ids, types in zip(enc["input_ids"], enc["token_type_ids"], strict=True):
        assert len(ids) <= 8
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        first_sep = ids.index(tok.sep_token_id)
        assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
    assert tok.model_max_length == 512 and info.vocab_size == len(tok) <= 500


@pytest.mark.parametrize("kw", GPT2_KINDS, ids=_id)
def test_gpt2_family_tokenizer_gives_plain_ids(build, kw):
    tok, info = build("gpt2", vocab_size=700, **kw)
    assert (tok.eos_token, tok.bos_token, tok.pad_token) == (EOT, EOT, "<|pad|>")
    enc = tok("the film was great")
    assert set(enc) == {"input_ids", "attention_mask"}
    assert EOT not in tok.convert_ids_to_tokens(enc["input_ids"])  # nothing added
    assert tok.decode(enc["input_ids"]) == "the film was great"  # byte-level: exact
    assert tok.unk_token == ("<|unk|>" if kw["kind"] == "wordpiece" else None)


def test_pretrained_returns_the_backbone_tokenizer_itself(minilm, corpus, tmp_path):
    tok, info = load_or_build_info(TokenizerConfig(), base_tokenizer=minilm, family="bert",
                                   corpus=corpus, cache_dir=tmp_path)
    assert tok is minilm and not info.built and info.vocab_size == 30522
    assert list(tmp_path.iterdir()) == []


def test_size_reached_is_reported_never_padded(build):
    tok, info = build("bert", kind="bpe", vocab_size=100_000)
    assert info.requested == 100_000 and info.vocab_size == len(tok) < 5_000
    assert len(tok.get_vocab()) == len(tok)


# Only BPE trains bit-for-bit reproducibly: WordPiece's ## symbols get ids in hash-map order,
# which breaks merge ties differently per process (tokenizers#1794), and Unigram's EM scores
# differ in the last digits. The cache is what keeps a run's vocabulary fixed.
@pytest.mark.parametrize("family, kind", [("bert", "bpe"), ("bert", "byte_bpe"), ("gpt2", "bpe")])
def test_same_spec_and_corpus_give_the_same_file(build, tmp_path, family, kind):
    _, a = build(family, kind=kind, vocab_size=400, cache_dir=tmp_path / "a")
    _, b = build(family, kind=kind, vocab_size=400, cache_dir=tmp_path / "b")
    assert a.built and b.built and a.key == b.key
    assert (tmp_path / "a" / a.path.split("/")[-1] / "tokenizer.json").read_bytes() == \
        (tmp_path / "b" / b.path.split("/")[-1] / "tokenizer.json").read_bytes()


def test_cache_key_follows_spec_and_corpus_not_name(build, corpus, tmp_path):
    _, a = build("bert", kind="bpe", vocab_size=400, name="one", cache_dir=tmp_path)
    _, b = build("bert", kind="bpe", vocab_size=400, name="two", cache_dir=tmp_path)
    _, c = build("bert", kind="bpe", vocab_size=401, cache_dir=tmp_path)
    _, d = build("bert", kind="bpe", vocab_size=400, corpus_texts=corpus[:-1], cache_dir=tmp_path)
    assert a.key == b.key and not b.built
    assert len({a.key, c.key, d.key}) == 3


def test_extra_corpus_file_and_max_chars(build, corpus, tmp_path):
    extra = tmp_path / "extra.txt"
    extra.write_text("zyzzyva quokka\n\nzyzzyva quokka\n" * 50, encoding="utf-8")
    tok, info = build("bert", kind="wordpiece", vocab_size=2000, corpus={"files": [str(extra)]})
    assert tok.tokenize("zyzzyva quokka") == ["zyzzyva", "quokka"]
    assert info.corpus_texts == len(corpus) + 100
    _, capped = build("bert", kind="wordpiece", vocab_size=2000, corpus={"max_chars": 1000})
    assert capped.corpus_chars == 1000
    _, only = build("bert", kind="wordpiece", vocab_size=2000,
                    corpus={"files": [str(extra)], "include_task": False})
    assert only.corpus_texts == 100


def test_extend_keeps_every_old_id_and_adds_the_worst_split_words(build, minilm, corpus):
    words = ["zorblaxian"] * 400 + ["quuxly"] * 5  # split by MiniLM; the first far more often
    texts = corpus + [" ".join(words[i:i + 9]) for i in range(0, len(words), 9)]
    tok, info = build("bert", mode="extend", extend_tokens=50, corpus_texts=texts)
    assert info.added == 50 and len(tok) == len(minilm) + 50
    old = minilm.get_vocab()
    assert all(tok.convert_tokens_to_ids(t) == i for t, i in old.items())
    assert tok.tokenize("The zorblaxian quuxly moviegoers!") == ["the", "zorblaxian", "quuxly", "moviegoers", "!"]
    assert len(minilm.tokenize("zorblaxian")) > 1
    new = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])[len(minilm):]
    assert new[0][0] == "zorblaxian"  # the highest freq × (pieces − 1)
    assert all(not t.startswith("##") for t, _ in new) and tok.all_special_tokens == minilm.all_special_tokens
    enc = tok("a zorblaxian film", "b")
    assert enc["input_ids"][0] == minilm.cls_token_id and "token_type_ids" in enc


def test_extend_a_byte_level_base(build, gpt2_old, corpus):
    texts = corpus + ["the zorblaxian zorblaxian film"] * 30
    tok, info = build("gpt2", mode="extend", extend_tokens=20, corpus_texts=texts)
    assert info.added == 20 and len(tok) == len(gpt2_old) + 20
    assert "Ġzorblaxian" in tok.get_vocab()
    assert tok.tokenize("a zorblaxian") == ["a", "Ġzorblaxian"]
    assert tok.decode(tok("a zorblaxian film")["input_ids"]) == "a zorblaxian film"
    # a text none of whose words was added is cut exactly as before
    added = set(tok.get_vocab()) - set(gpt2_old.get_vocab())
    pre = gpt2_old.backend_tokenizer.pre_tokenizer
    untouched = [t for t in corpus if not {w for w, _ in pre.pre_tokenize_str(t)} & added]
    assert len(untouched) > 100
    assert all(tok(t)["input_ids"] == gpt2_old(t)["input_ids"] for t in untouched)


@pytest.mark.real_data
@pytest.mark.skipif(sst2_dir() is None, reason="SST-2 absent: set GLUE_DIR or put GLUE in ../shared/data/glue")
def test_bpe32k_on_sst2_stops_near_19k_tokens(build, tmp_path):
    texts = read_sst2(sst2_dir() / "train.tsv")
    tok, info = build("bert", kind="bpe", vocab_size=32000, corpus_texts=texts, cache_dir=tmp_path)
    assert 19_000 < info.vocab_size < 19_700 and info.vocab_size == len(tok)  # design.md: 19,314
    assert info.corpus_texts == 67_349


def test_own_special_tokens_keep_their_order_and_roles(build):
    tok, _ = build("gpt2", kind="bpe", vocab_size=700, post_processor="bert",
                   special_tokens=["<|pad|>", "<|endoftext|>", "[CLS]", "[SEP]", "<|user|>"])
    assert tok.convert_ids_to_tokens(list(range(5))) == ["<|pad|>", EOT, "[CLS]", "[SEP]", "<|user|>"]
    assert (tok.pad_token_id, tok.eos_token_id, tok.cls_token_id, tok.sep_token_id) == (0, 1, 2, 3)
    assert tok.decode(tok("a b", "c")["input_ids"]) == "[CLS]a b[SEP]c[SEP]"
    assert "<|user|>" in tok.all_special_tokens and tok.tokenize("a<|user|>b") == ["a", "<|user|>", "b"]
