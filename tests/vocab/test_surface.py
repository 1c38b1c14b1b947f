"""Markers undone: what each scheme's token stands for, and where in a word it sits."""
from __future__ import annotations

import pytest
from tokenizers import pre_tokenizers

from tokentune.vocab.surface import BYTE_ENCODER, Piece, Scheme, piece

WORDPIECE = Scheme(prefix="##", suffix=None, byte_level=False, metaspace=None, metaspace_always=False,
                   wordpiece=True)
BYTE_LEVEL = Scheme(prefix=None, suffix=None, byte_level=True, metaspace=None, metaspace_always=False,
                    wordpiece=False)
METASPACE = Scheme(prefix=None, suffix=None, byte_level=False, metaspace="▁", metaspace_always=True,
                   wordpiece=False)
SUFFIX = Scheme(prefix=None, suffix="</w>", byte_level=False, metaspace=None, metaspace_always=False,
                wordpiece=False)
PLAIN = Scheme(prefix=None, suffix=None, byte_level=False, metaspace=None, metaspace_always=False,
               wordpiece=False)


def test_byte_table_is_the_one_tokenizers_uses():
    assert set(BYTE_ENCODER.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    text = " héllo 😀\n\t"
    mapped = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(text)[0][0]
    assert mapped == "".join(BYTE_ENCODER[b] for b in text.encode())


@pytest.mark.parametrize("scheme, token, expected", [
    (WORDPIECE, "the", Piece(b"the", True)),
    (WORDPIECE, "##ing", Piece(b"ing", False)),
    (WORDPIECE, "##", Piece(b"##", True)),  # the prefix alone is a token of its own
    (BYTE_LEVEL, "Ġthe", Piece(b"the", True)),
    (BYTE_LEVEL, "the", Piece(b"the", None)),  # text-initial word or inside one
    (BYTE_LEVEL, "Ġ", Piece(b" ", None)),
    (BYTE_LEVEL, "ĠcafÃ©", Piece("café".encode(), True)),
    (BYTE_LEVEL, "ð", Piece(b"\xf0", None)),  # the first byte of an emoji
    (BYTE_LEVEL, "<|endoftext|>", Piece(b"<|endoftext|>", None)),
    (METASPACE, "▁the", Piece(b"the", True)),
    (METASPACE, "ing", Piece(b"ing", False)),
    (METASPACE, "new▁york", Piece(b"new york", False)),
    (SUFFIX, "the</w>", Piece(b"the", None)),
    (SUFFIX, "</w>", Piece(b"</w>", None)),
    (PLAIN, "ing", Piece(b"ing", None)),
])
def test_piece(scheme, token, expected):
    assert piece(token, scheme) == expected


def test_scheme_is_read_from_the_tokenizer(minilm, gpt2_old):
    assert Scheme.of(minilm.backend_tokenizer) == WORDPIECE
    assert Scheme.of(gpt2_old.backend_tokenizer) == BYTE_LEVEL
