"""What a token stands for, across marker schemes, and how an old tokenizer spells it.

Vocabularies mark word boundaries differently: WordPiece `##ing` continues a word, byte-level BPE
`Ġthe` follows a space (and its symbols are bytes, maybe part of a character), Metaspace `▁the`
starts a word, some BPEs end words with `</w>`. A `Piece` undoes that: the token's true text
(UTF-8 bytes) and whether it starts a word (True), continues one (False) or may do either (None).
`OldVocab` then finds a new token's own row in an old vocabulary, or splits its text the way the
old tokenizer would (a continuation as a continuation), for Fast Vocabulary Transfer.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from tokenizers import Tokenizer

# GPT-2's byte → printable character table, which byte-level pre-tokenizers apply: printable
# Latin-1 bytes stand for themselves, the rest map to chr(256), chr(257), ... in byte order.
_PRINTABLE = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | \
    set(range(ord("®"), ord("ÿ") + 1))
BYTE_ENCODER = {b: chr(b) if b in _PRINTABLE else chr(256 + sum(1 for x in range(b) if x not in _PRINTABLE))
                for b in range(256)}
BYTE_DECODER = {c: b for b, c in BYTE_ENCODER.items()}


@dataclass(frozen=True)
class Scheme:
    """How one tokenizer marks word boundaries."""

    prefix: str | None  # continuing_subword_prefix: WordPiece "##" (unmarked = word start)
    suffix: str | None  # end_of_word_suffix, e.g. "</w>"
    byte_level: bool  # symbols are bytes; "Ġ" is a space
    metaspace: str | None  # the replacement character, "▁"
    metaspace_always: bool  # every word gets "▁", so an unmarked piece continues a word
    wordpiece: bool  # greedy longest-match model (continuations are looked up with the prefix)

    @classmethod
    def of(cls, backend: Tokenizer) -> Scheme:
        data = json.loads(backend.to_str())
        parts = list(_walk(data.get("pre_tokenizer"))) + list(_walk(data.get("decoder")))
        meta = next((p for p in parts if p.get("type") == "Metaspace"), None)
        model = data["model"]
        return cls(prefix=model.get("continuing_subword_prefix") or None,
                   suffix=model.get("end_of_word_suffix") or None,
                   byte_level=any(p.get("type") == "ByteLevel" for p in parts),
                   metaspace=meta.get("replacement", "▁") if meta else None,
                   metaspace_always=bool(meta) and meta.get("prepend_scheme", "always") == "always",
                   wordpiece=model["type"] == "WordPiece")


def _walk(node):
    if isinstance(node, dict):
        yield node
        for key in ("pretokenizers", "decoders"):
            for child in node.get(key) or []:
                yield from _walk(child)


@dataclass(frozen=True)
class Piece:
    surface: bytes  # the text the token stands for, markers removed
    start: bool | None  # begins a word / continues one / unknown


def piece(token: str, s: Scheme) -> Piece:
    start: bool | None = None
    if s.prefix:
        if token.startswith(s.prefix) and len(token) > len(s.prefix):
            token, start = token[len(s.prefix):], False
        else:
            start = True
    if s.suffix and token.endswith(s.suffix) and len(token) > len(s.suffix):
        token = token[: -len(s.suffix)]  # a word end; where it starts stays as decided above
    if s.byte_level:  # characters outside the table are added tokens' own text
        raw = b"".join(bytes([BYTE_DECODER[c]]) if c in BYTE_DECODER else c.encode() for c in token)
    else:
        raw = token.encode()
    if s.metaspace:
        mark = s.metaspace.encode()
        if raw.startswith(mark):
            raw, start = raw[len(mark):], True
        elif s.metaspace_always and start is None:
            start = False
        raw = raw.replace(mark, b" ")
    if s.byte_level and raw.startswith(b" ") and len(raw) > 1:
        raw, start = raw[1:], True
    return Piece(raw, start)


class OldVocab:
    """An old tokenizer's vocabulary, indexed by Piece, and its way of splitting text."""

    # which (surface, start) keys a new piece may take its row from, best first. A piece whose
    # position is known only takes a row from that position ("Ġthe" ← "the", never ← "##the");
    # one that may be anywhere takes any (plain BPE's "ing" ← "ing", else "##ing").
    ORDER = {True: (True,), False: (False,), None: (None, True, False)}

    def __init__(self, tokenizer):
        self.backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self.backend.no_padding()
        self.backend.no_truncation()
        self.scheme = Scheme.of(self.backend)
        self.vocab = tokenizer.get_vocab()
        self.unk_id = tokenizer.unk_token_id
        self.index: dict[tuple[bytes, bool | None], int] = {}
        for token, i in sorted(self.vocab.items(), key=lambda kv: kv[1]):
            p = piece(token, self.scheme)
            self.index.setdefault((p.surface, p.start), i)

    def find(self, p: Piece) -> int | None:
        """The old id of a token with this text and position, if there is one."""
        for start in self.ORDER[p.start]:
            i = self.index.get((p.surface, start))
            if i is not None:
                return i
        return None

    def split(self, p: Piece) -> list[int]:
        """Old ids that spell `p` (no special tokens, no unknowns); [] when nothing fits."""
        s = self.scheme
        text: str | None
        try:
            text = p.surface.decode("utf-8")
        except UnicodeDecodeError:  # part of a character: only a byte-level vocabulary can spell it
            if not s.byte_level:
                return []
            raw = (b" " if p.start else b"") + p.surface
            return self._ids(self.backend.model.tokenize("".join(BYTE_ENCODER[b] for b in raw)))
        if s.byte_level and p.start:
            text = " " + text  # "Ġ": the old tokenizer spells a word start with its space
        if self.backend.normalizer is not None:
            text = self.backend.normalizer.normalize_str(text)
        pre = self.backend.pre_tokenizer
        words = [w for w, _ in pre.pre_tokenize_str(text)] if pre is not None else [text]
        ids: list[int] = []
        for k, word in enumerate(words):
            if k == 0 and p.start is False:  # spell the first word as the inside of a word
                if s.wordpiece:
                    ids += self._continuation(word)
                    continue
                if s.metaspace and word.startswith(s.metaspace):
                    word = word[len(s.metaspace):]
            if word:
                ids += self._ids(self.backend.model.tokenize(word))
        return ids

    def _ids(self, tokens) -> list[int]:
        return [t.id for t in tokens if t.id != self.unk_id]

    def _continuation(self, word: str) -> list[int]:
        """WordPiece's greedy longest match, with every piece (the first too) a ## continuation."""
        model, prefix = self.backend.model, self.scheme.prefix or "##"
        if len(word) > getattr(model, "max_input_chars_per_word", 100):
            return []
        ids, begin = [], 0
        while begin < len(word):
            end = len(word)
            while end > begin and prefix + word[begin:end] not in self.vocab:
                end -= 1
            if end == begin:
                return []  # WordPiece would make the whole word [UNK]
            ids.append(self.vocab[prefix + word[begin:end]])
            begin = end
        return ids
