"""decode(encode(text)) gives the normalised text back: exactly for byte-level vocabularies; up to
the spaces the pre-tokenizer inserts for the others, on text within the vocabulary's alphabet.
Characters outside it become the unknown token: counted, never expected back (design.md §8)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

BYTE_LEVEL = [("bert", dict(kind="byte_bpe")), ("gpt2", dict(kind="byte_bpe")),
              ("gpt2", dict(kind="bpe")), ("gpt2", dict(kind="wordpiece")), ("gpt2", dict(kind="unigram"))]
SPACED = [("bert", dict(kind="bpe")), ("bert", dict(kind="bpe", decoder="bpe")),
          ("bert", dict(kind="bpe", decoder="wordpiece")), ("bert", dict(kind="wordpiece")),
          ("bert", dict(kind="unigram")), ("bert", dict(kind="unigram", pre_tokenizer="bert+metaspace"))]
OUTSIDE = "😀ж中ß€"  # not in the test corpus: unknown to non-byte-level vocabularies
FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _id(case) -> str:
    family, kw = case
    return "-".join([family, *map(str, kw.values())])


def squeeze(text: str) -> str:
    return "".join(text.split())


def roundtrip(tok, text: str, skip_special_tokens: bool = True) -> str:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return tok.decode(ids, skip_special_tokens=skip_special_tokens, clean_up_tokenization_spaces=False)


def normalise(tok, text: str) -> str:
    norm = tok.backend_tokenizer.normalizer
    return norm.normalize_str(text) if norm is not None else text


def alphabet(tok, corpus: list[str]) -> str:
    chars = {c for line in corpus for c in normalise(tok, line) if not c.isspace()}
    return "".join(sorted(chars))


@pytest.mark.parametrize("case", BYTE_LEVEL, ids=_id)
def test_byte_level_roundtrip_is_exact(build, case):
    family, kw = case
    tok, _ = build(family, vocab_size=700, **kw)

    @FAST
    @given(st.text(max_size=60))
    @example("")
    @example("Héllo,  wörld!\n\t😀👍🏽 中文 — “quotes”")
    def check(text):
        seen.append(text)
        # a special token's literal text ("[CLS]") is matched before normalisation, on purpose
        assume(not any(s in text for s in tok.all_special_tokens))
        assert roundtrip(tok, text, skip_special_tokens=False) == normalise(tok, text)

    seen: list[str] = []
    check()
    assert len(seen) >= 50 and "" in seen  # the property ran on many texts, the empty one too


@pytest.mark.parametrize("case", SPACED, ids=_id)
def test_roundtrip_up_to_spacing_within_the_alphabet(build, corpus, case):
    family, kw = case
    tok, _ = build(family, vocab_size=500, **kw)
    chars = alphabet(tok, corpus)
    assert set("abcdefghijklmnopqrstuvwxyz0123456789,.!?") <= set(chars)

    @FAST
    @given(st.text(alphabet=chars + "  \t\n", max_size=60))
    @example("")
    @example("the moviegoers, never ever!")
    def check(text):
        seen.append(text)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids
        assert squeeze(roundtrip(tok, text)) == squeeze(normalise(tok, text))

    seen: list[str] = []
    check()
    assert len(seen) >= 50 and "" in seen  # the property ran on many texts, the empty one too


@pytest.mark.parametrize("case", SPACED, ids=_id)
def test_characters_outside_the_alphabet_become_unknown_and_are_counted(build, corpus, case):
    family, kw = case
    tok, _ = build(family, vocab_size=500, **kw)
    chars = alphabet(tok, corpus)
    assert not set(OUTSIDE) & set(chars)
    wordpiece = tok.backend_tokenizer.model.__class__.__name__ == "WordPiece"
    pre = tok.backend_tokenizer.pre_tokenizer

    @FAST
    @given(st.text(alphabet=chars + OUTSIDE + " ", max_size=60))
    @example("😀")
    @example("a 😀 b")
    def check(text):
        seen.append(text)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        n_unk = ids.count(tok.unk_token_id)
        norm = normalise(tok, text)
        outside = [c for c in norm if c in OUTSIDE]
        # every unknown stands for at least one outside character, and each one is accounted for
        assert (n_unk > 0) == bool(outside) and n_unk <= len(outside)
        if wordpiece:  # WordPiece drops the whole word that holds an unknown character
            kept = [w for w, _ in pre.pre_tokenize_str(norm) if not set(w) & set(OUTSIDE)]
            assert squeeze(roundtrip(tok, text)) == "".join(kept)
        else:  # the other models lose just those characters
            assert squeeze(roundtrip(tok, text)) == squeeze("".join(c for c in norm if c not in OUTSIDE))

    seen: list[str] = []
    check()
    assert len(seen) >= 50 and "" in seen  # the property ran on many texts, the empty one too
