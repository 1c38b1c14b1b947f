"""Words ↔ sub-tokens, for any fast tokenizer, from character offsets.

The words of a sentence are joined with single spaces into the text the model sees, tokenized
with `return_offsets_mapping=True`, and each token belongs to the word that its first non-space
character falls in. Special tokens (zero-width offsets) and tokens that are only a space belong
to none. transformers' `is_split_into_words` is not used: it hands the tokenizer each word as a
piece of its own, and byte-level BPE then reads the words without the space that precedes them
in running text (transformers' GPT-2 tokenizer refuses it unless add_prefix_space=True); offsets
work the same way for every fast tokenizer.

The offsets differ by tokenizer, and the rule above covers each:
- WordPiece (MiniLM): a word's pieces carry its own characters; [CLS]/[SEP] are (0, 0).
- byte-level BPE without trimmed offsets (GPT-2's convention): "Ġword" includes the space
  before it, and a lone "Ġ" is only that space (no word); with trimmed offsets (tokentune's
  byte_bpe) a lone "Ġ" is zero-width instead.
- byte-level pieces of one multi-byte character (é = "Ã" "©") both carry that character.
- a metaspace "▁" prepended to a word carries the word's first character, so it is that word's
  first sub-token (as in SentencePiece models); a "▁" that stands for a space belongs to none.

A word can end up without any token of its own: when max_length cuts it off (counted as
truncated), or when the tokenizer drops it (characters the normalizer deletes, such as U+200B;
characters a vocabulary without an unk token has no symbol for) or one token spans it and the
word before (a vocabulary built without a pre-tokenizer): counted as unaligned. Neither is ever
dropped silently.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence

from tokentune.errors import UserError
from tokentune.task.token_classification.conll import TaggedSentence

IGNORE = -100  # the label torch's cross-entropy skips (ignore_index)
# texts per tokenizer call: a batch is encoded on every core (tokenizers' encode_batch), and a
# chunk of a split, unlike the whole split, does not hold every encoding and its offsets at once
CHUNK = 1000


def words_to_text(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The words joined with single spaces, and each word's (start, end) in that text."""
    spans = []
    pos = 0
    for w in words:
        spans.append((pos, pos + len(w)))
        pos += len(w) + 1
    return " ".join(words), spans


def split_words(text: str) -> list[tuple[str, int, int]]:
    """A raw text's words (runs of non-whitespace) with their (start, end) in it, for predicting on
    text that was never split into words: the tags found for word i cover text[start:end]."""
    return [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def word_ids(tokenizer, words: Sequence[str], *, max_length: int):
    """(input_ids, token_type_ids or None, word_ids, truncated_words) for one sentence: word_ids[t]
    is the index of the word token t belongs to, or None; truncated_words counts the words whose
    first sub-token max_length cut off."""
    return _encode(tokenizer, [words], max_length)[0]


def first_subtokens(word_ids: Sequence[int | None], n_words: int) -> list[int | None]:
    """For each word, the position of its first sub-token (None: the word has no token): where
    its label goes in training, and where its prediction is read."""
    first: list[int | None] = [None] * n_words
    for pos, w in enumerate(word_ids):
        if w is not None and first[w] is None:
            first[w] = pos
    return first


def begin_to_inside(label2id: Mapping[str, int]) -> dict[int, int]:
    """{id of B-X: id of I-X} for align_labels(label_all_subtokens=True): a word's later
    sub-tokens continue its entity, they do not begin another (HF run_ner's b_to_i_label). Only
    B-X maps: with BIOES labels, the later sub-tokens of an S-X or E-X word keep that label."""
    return {i: label2id["I-" + label[2:]] for label, i in label2id.items()
            if label.startswith("B-") and "I-" + label[2:] in label2id}


def align_labels(word_ids: Sequence[int | None], word_labels: Sequence[int], *,
                 label_all_subtokens: bool = False, b_to_i: Mapping[int, int] | None = None,
                 ignore: int = IGNORE) -> list[int]:
    """Token labels: each word's label on its first sub-token; `ignore` on special tokens and on
    the other sub-tokens, or, with label_all_subtokens (HF run_ner's label_all_tokens), the word's
    label there too, B-X turned into I-X by `b_to_i` (see begin_to_inside)."""
    if label_all_subtokens and b_to_i is None:
        raise ValueError("label_all_subtokens=True needs b_to_i (see begin_to_inside)")
    first = set(p for p in first_subtokens(word_ids, len(word_labels)) if p is not None)
    labels = []
    for pos, w in enumerate(word_ids):
        if w is None:
            labels.append(ignore)
        elif pos in first:
            labels.append(word_labels[w])
        elif label_all_subtokens:
            labels.append(b_to_i.get(word_labels[w], word_labels[w]))
        else:
            labels.append(ignore)
    return labels


def encode_sentences(tokenizer, sentences: Sequence[TaggedSentence], label2id: Mapping[str, int], *,
                     max_length: int, label_all_subtokens: bool = False) -> dict:
    """Every sentence tokenized and labelled, as lists ready for tensors:
    {"input_ids": [[int]], "token_type_ids": [[int]] (only if the tokenizer gives them),
     "labels": [[int]] (only for labelled sentences; IGNORE where no label), "word_ids":
     [[int | None]], "truncated_words": int, "unaligned_words": int} (the counts over all
    sentences; see the module docstring). Every tag must be in label2id (tags.check_labels)."""
    labelled = {s.tags is not None for s in sentences}
    if len(labelled) > 1:
        raise ValueError("some sentences have tags and some do not: encode the splits separately")
    b_to_i = begin_to_inside(label2id) if label_all_subtokens else None
    out: dict = {"input_ids": [], "token_type_ids": [], "labels": [], "word_ids": [],
                 "truncated_words": 0, "unaligned_words": 0}
    for start in range(0, len(sentences), CHUNK):
        chunk = sentences[start:start + CHUNK]
        for s, (ids, types, wids, truncated) in zip(chunk, _encode(tokenizer, [s.tokens for s in chunk],
                                                                    max_length), strict=True):
            out["input_ids"].append(ids)
            out["token_type_ids"].append(types)
            out["word_ids"].append(wids)
            out["truncated_words"] += truncated
            out["unaligned_words"] += len(s.tokens) - truncated - len({w for w in wids if w is not None})
            if s.tags is not None:
                out["labels"].append(align_labels(wids, [label2id[t] for t in s.tags],
                                                  label_all_subtokens=label_all_subtokens, b_to_i=b_to_i))
    if not out["labels"]:
        del out["labels"]
    if not out["token_type_ids"] or out["token_type_ids"][0] is None:
        del out["token_type_ids"]
    return out


def _encode(tokenizer, sentences: Sequence[Sequence[str]], max_length: int) -> list[tuple]:
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(f"{type(tokenizer).__name__} gives no word boundaries (character offsets); "
                        "use a fast tokenizer (one with a tokenizer.json)")
    specials = tokenizer.num_special_tokens_to_add()
    if max_length <= specials:  # the tokenizer would keep only its special tokens, or not truncate at all
        raise UserError(f"max_length {max_length} leaves no room for words: this tokenizer adds "
                        f"{specials} special tokens to each sentence; raise max_length")
    texts, spans = zip(*(words_to_text(words) for words in sentences))
    # The overflow rows hold what truncation cut off: a word that starts there is truncated.
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, return_offsets_mapping=True,
                    return_overflowing_tokens=True)
    types = enc.get("token_type_ids")
    kept: dict[int, tuple] = {}
    cut: dict[int, set[int]] = defaultdict(set)
    for row, i in enumerate(enc["overflow_to_sample_mapping"]):
        words = _token_words(texts[i], [start for start, _ in spans[i]], enc["offset_mapping"][row])
        if i in kept:
            cut[i].update(w for w in words if w is not None)
        else:
            kept[i] = (enc["input_ids"][row], None if types is None else types[row], words)
    return [(ids, t, words, len(cut[i] - set(words))) for i, (ids, t, words) in sorted(kept.items())]


def _token_words(text: str, starts: list[int], offsets: Sequence[tuple[int, int]]) -> list[int | None]:
    words = []
    for start, end in offsets:
        while start < end and text[start].isspace():
            start += 1
        words.append(bisect_right(starts, start) - 1 if start < end else None)
    return words
