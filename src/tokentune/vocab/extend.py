"""Extend mode: the backbone's vocabulary plus the N corpus words it splits worst.

A word's score is freq × (pieces − 1): the tokens saved over the corpus if the word were one
token. Words are counted after the backbone's own normalizer and pre-tokenizer, so each added
token is exactly a pre-token the model sees. A word the backbone cannot represent ([UNK]) counts
as many pieces as it has characters. New words go into the model's own vocabulary (not the
added-tokens list) with ids after every existing id, so old ids and rows stay as they were:
- WordPiece / WordLevel: a vocabulary entry; greedy longest-match takes the whole word.
- BPE: a vocabulary entry plus `ignore_merges`, which looks a whole pre-token up before merging.
- Unigram: a piece with the best existing score, so Viterbi prefers the whole word.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

from tokenizers import Tokenizer

from tokentune.errors import UserError


def count_words(backend: Tokenizer, texts: Iterable[str]) -> Counter:
    norm, pre = backend.normalizer, backend.pre_tokenizer
    counts: Counter = Counter()
    for text in texts:
        if norm is not None:
            text = norm.normalize_str(text)
        if pre is None:
            counts[text] += 1
        else:
            counts.update(w for w, _ in pre.pre_tokenize_str(text))
    return counts


def choose_words(backend: Tokenizer, counts: Counter, n: int, min_frequency: int) -> list[str]:
    """The n highest-scoring words not yet in the vocabulary (ties: alphabetical, so deterministic)."""
    vocab = backend.get_vocab(with_added_tokens=True)
    model = backend.model
    unk = getattr(model, "unk_token", None)
    unk_id = backend.token_to_id(unk) if unk else None
    max_chars = getattr(model, "max_input_chars_per_word", None)
    scored = []
    for word, freq in counts.items():
        if freq < max(min_frequency, 1) or word in vocab or (max_chars and len(word) > max_chars):
            continue
        pieces = model.tokenize(word)
        cost = max(len(pieces), len(word)) if any(p.id == unk_id for p in pieces) else len(pieces)
        if cost > 1:
            scored.append((freq * (cost - 1), word))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [w for _, w in scored[:n]]


def add_words(backend: Tokenizer, words: list[str]) -> Tokenizer:
    """A copy of `backend` whose model vocabulary also holds `words`, at ids after all others."""
    data = json.loads(backend.to_str())
    model = data["model"]
    ids = list(backend.get_vocab(with_added_tokens=True).values())
    next_id = max(ids) + 1 if ids else 0
    kind = model["type"]
    if kind in ("WordPiece", "WordLevel", "BPE"):
        for i, w in enumerate(words):
            model["vocab"][w] = next_id + i
        if kind == "BPE":
            model["ignore_merges"] = True
    elif kind == "Unigram":
        if next_id != len(model["vocab"]):
            raise UserError(f"tokenizer.mode: extend cannot add to this Unigram tokenizer: it has "
                            f"added tokens past its {len(model['vocab']):,} pieces (Unigram ids are "
                            "positions); use mode=replace")
        best = max((score for _, score in model["vocab"]), default=0.0)
        model["vocab"].extend([w, best] for w in words)
    else:
        raise UserError(f"tokenizer.mode: extend does not know how to add words to a {kind} model; "
                        "use mode=replace")
    return Tokenizer.from_str(json.dumps(data))
