"""A TokenizerConfig resolved into `tokenizers` parts, ready to train.

normalizer → pre-tokenizer → model (+ its trainer) → post-processor → decoder, plus the special
tokens and their roles. Unset parts are filled in here: the normalizer is the backbone
tokenizer's own; the pre-tokenizer, post-processor and special tokens are the family's
(`tokentune.model.families`: BERT's bert pre-tokenizer, [CLS] a [SEP] b [SEP] template and
[PAD] [UNK] [CLS] [SEP] [MASK]; GPT-2's byte_level and <|endoftext|> <|pad|>); kind byte_bpe
always pre-tokenizes byte_level, whose post-processor trims offsets.

Word-boundary markers follow the decoder: plain `bpe` and `unigram` have none (as in design.md's
19.3k probe; decode() then spaces pieces apart, and on SST-2 unigram+bert is 0.12 tokens/word
shorter than with metaspace), `decoder: bpe` trains `</w>` suffixes, `decoder: wordpiece` `##`
prefixes; `wordpiece` always uses `##`; a metaspace pre-tokenizer adds `▁`; byte_level maps spaces
to `Ġ` and makes decoding exact.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from tokentune.errors import ConfigError
from tokentune.model.families import FAMILIES, get_family
from tokentune.vocab.spec import TokenizerConfig

SUFFIX, PREFIX, METASPACE = "</w>", "##", "▁"


def _normalizer(name: str) -> normalizers.Normalizer | None:
    parts = {
        "bert": lambda: normalizers.BertNormalizer(lowercase=True),  # strip_accents follows lowercase
        "bert_cased": lambda: normalizers.BertNormalizer(lowercase=False, strip_accents=False),
        "nfc": normalizers.NFC, "nfd": normalizers.NFD, "nfkc": normalizers.NFKC, "nfkd": normalizers.NFKD,
        "lowercase": normalizers.Lowercase,
        "strip_accents": lambda: normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents()]),
    }
    chain = [parts[p.strip()]() for p in name.split("+") if p.strip() != "none"]
    return None if not chain else chain[0] if len(chain) == 1 else normalizers.Sequence(chain)


def _pre_tokenizer(name: str) -> pre_tokenizers.PreTokenizer | None:
    parts = {
        "bert": pre_tokenizers.BertPreTokenizer, "whitespace": pre_tokenizers.Whitespace,
        "whitespace_split": pre_tokenizers.WhitespaceSplit, "punctuation": pre_tokenizers.Punctuation,
        "digits": lambda: pre_tokenizers.Digits(individual_digits=True),
        "metaspace": lambda: pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always"),
        # no prefix space: decode(encode(text)) == text, byte for byte
        "byte_level": lambda: pre_tokenizers.ByteLevel(add_prefix_space=False),
    }
    chain = [parts[p.strip()]() for p in name.split("+") if p.strip() != "none"]
    return None if not chain else chain[0] if len(chain) == 1 else pre_tokenizers.Sequence(chain)


@dataclass
class Pipeline:
    """Resolved names of each part, the special tokens (id order) and their roles."""

    kind: str
    family: str
    normalizer: str | None  # None = the backbone tokenizer's own normalizer object
    pre_tokenizer: str
    post_processor: str
    decoder: str
    special_tokens: list[str]
    roles: dict[str, str]  # e.g. {"cls_token": "[CLS]", ...}, the wrapper's keyword arguments
    vocab_size: int
    min_frequency: int
    show_progress: bool

    @property
    def byte_level(self) -> bool:
        return self.pre_tokenizer.split("+")[-1] == "byte_level"

    @property
    def marker(self) -> str | None:
        """The model's own word-boundary marker: '##' continuation prefix or '</w>' suffix."""
        if self.kind == "wordpiece" or (self.kind == "bpe" and self.decoder == "wordpiece"):
            return PREFIX
        return SUFFIX if self.kind == "bpe" and self.decoder == "bpe" else None

    def untrained(self, base_normalizer: Any) -> Tokenizer:
        unk = self.roles.get("unk_token")
        marker = {"continuing_subword_prefix": PREFIX} if self.marker == PREFIX else \
            {"end_of_word_suffix": SUFFIX} if self.marker == SUFFIX else {}
        if self.kind in ("bpe", "byte_bpe"):
            model = models.BPE(unk_token=unk, **marker) if unk else models.BPE(**marker)
        elif self.kind == "wordpiece":
            model = models.WordPiece(unk_token=unk, continuing_subword_prefix=PREFIX)
        else:
            model = models.Unigram()
        tok = Tokenizer(model)
        tok.normalizer = base_normalizer if self.normalizer is None else _normalizer(self.normalizer)
        tok.pre_tokenizer = _pre_tokenizer(self.pre_tokenizer)
        tok.decoder = self._decoder()
        return tok

    @property
    def byte_continuations(self) -> bool:
        """Byte-level WordPiece: "##"+byte for all 256 bytes, seen inside a word in the corpus or not
        (the trainer's initial alphabet only adds word-initial symbols; a missing one → [UNK])."""
        return self.kind == "wordpiece" and self.byte_level

    def trainer(self) -> trainers.Trainer:
        size = self.vocab_size - (256 if self.byte_continuations else 0)  # room for those added after
        common: dict[str, Any] = dict(vocab_size=max(size, 1), special_tokens=self.special_tokens,
                                      show_progress=self.show_progress)
        if self.byte_level:  # every byte is in the vocabulary, seen in the corpus or not
            common["initial_alphabet"] = pre_tokenizers.ByteLevel.alphabet()
        if self.kind == "unigram":  # (UnigramTrainer has no min_frequency)
            return trainers.UnigramTrainer(unk_token=self.roles.get("unk_token"), **common)
        marker = {"continuing_subword_prefix": PREFIX} if self.marker == PREFIX else \
            {"end_of_word_suffix": SUFFIX} if self.marker == SUFFIX else {}
        cls = trainers.WordPieceTrainer if self.kind == "wordpiece" else trainers.BpeTrainer
        return cls(min_frequency=self.min_frequency, **marker, **common)

    def finish(self, tok: Tokenizer) -> Tokenizer:
        """After training: complete byte continuations; set the post-processor (it needs ids)."""
        if self.byte_continuations:
            data = json.loads(tok.to_str())
            vocab = data["model"]["vocab"]
            for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
                vocab.setdefault(PREFIX + symbol, len(vocab))
            tok = Tokenizer.from_str(json.dumps(data))
        if self.kind == "unigram" and tok.get_vocab_size() > self.vocab_size:
            tok = self._trim_unigram(tok)
        if self.post_processor == "none":
            return tok
        trim = processors.ByteLevel(trim_offsets=True)
        if self.post_processor == "byte_level":
            tok.post_processor = trim
            return tok
        cls, sep = self.roles["cls_token"], self.roles["sep_token"]
        template = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))])
        tok.post_processor = processors.Sequence([trim, template]) if self.byte_level else template
        return tok

    def _trim_unigram(self, tok: Tokenizer) -> Tokenizer:
        """UnigramTrainer can end a few pieces over vocab_size when that is close to the alphabet:
        drop the lowest-scoring multi-character pieces, as SentencePiece's finalisation does.
        (Specials come first, so no id before a dropped piece moves, unk_id included.)"""
        data = json.loads(tok.to_str())
        pieces = data["model"]["vocab"]
        keep = set(self.special_tokens)
        droppable = sorted((score, i) for i, (p, score) in enumerate(pieces) if len(p) > 1 and p not in keep)
        drop = {i for _, i in droppable[: len(pieces) - self.vocab_size]}
        data["model"]["vocab"] = [p for i, p in enumerate(pieces) if i not in drop]
        return Tokenizer.from_str(json.dumps(data))

    def _decoder(self) -> decoders.Decoder | None:
        if self.decoder == "none":
            return None
        if self.decoder == "wordpiece" or (self.kind == "wordpiece" and self.byte_level):
            # with byte_level, Ġ already marks word starts: only the ## prefix has to go
            strip = decoders.Replace(Regex(f"^{PREFIX}"), "")
            if self.byte_level:
                return decoders.Sequence([strip, decoders.ByteLevel()])
            # WordPiece keeps a leading "##" (a sequence cut mid-word, or after a skipped [UNK]);
            # no cleanup: it rewrites text (" do not" → " don't"), not just spaces
            return decoders.Sequence([decoders.WordPiece(prefix=PREFIX, cleanup=False), strip])
        return {"bpe": lambda: decoders.BPEDecoder(suffix=SUFFIX), "metaspace": decoders.Metaspace,
                "byte_level": decoders.ByteLevel}[self.decoder]()

    def wrapper_kwargs(self, model_max_length: int) -> dict[str, Any]:
        kwargs = {**self.roles, "model_max_length": model_max_length,
                  "model_input_names": list(get_family(self.family).input_names), "padding_side": "right"}
        extra = [t for t in self.special_tokens if t not in self.roles.values()]
        if extra:  # (transformers 5 reads this older name too, as extra_special_tokens)
            kwargs["additional_special_tokens"] = extra
        return kwargs


def resolve(spec: TokenizerConfig, family: str) -> Pipeline:
    """Fill the family's defaults into `spec` and check that the parts fit together."""
    fam = get_family(family)
    kind = spec.kind
    pre = spec.pre_tokenizer or ("byte_level" if kind == "byte_bpe" else fam.pre_tokenizer)
    byte_level = pre.split("+")[-1] == "byte_level"
    metaspace = "metaspace" in pre.split("+")
    decoder = spec.decoder or (
        "byte_level" if byte_level and kind != "wordpiece" else
        "wordpiece" if kind == "wordpiece" else "metaspace" if metaspace else "none")
    post = spec.post_processor or fam.post_processor or ("byte_level" if byte_level else "none")
    if kind == "byte_bpe" and not byte_level:
        raise ConfigError("tokenizer.pre_tokenizer", f"kind byte_bpe needs a pre_tokenizer ending in "
                          f"byte_level, not '{pre}' (or use kind bpe)")
    _check_parts(kind, decoder, byte_level, metaspace)

    needs_unk = kind == "wordpiece" or not byte_level  # byte-level alphabets cover every input
    if spec.special_tokens is None:
        specials = list(dict.fromkeys(t for r, t in fam.special_tokens.items()
                                      if r != "unk_token" or needs_unk or not fam.unk_only_if_needed))
    else:
        specials = list(spec.special_tokens)
    # a user's list is read by every family's conventions (e.g. [CLS] in a GPT-2 list), its own first
    known = {r: t for other in FAMILIES.values() if other is not fam for r, t in other.special_tokens.items()}
    known.update(fam.special_tokens)
    roles = {r: t for r, t in known.items() if t in specials}
    required = fam.required_roles + (("unk_token",) if needs_unk else ())
    required += ("cls_token", "sep_token") if post == "bert" else ()
    for role in dict.fromkeys(required):
        if role not in roles:
            raise ConfigError("tokenizer.special_tokens",
                              f"this {family} {kind} tokenizer needs {known[role]!r} ({role}); add it to "
                              f"{specials} or set special_tokens: null for the family's own")
    return Pipeline(kind=kind, family=family, normalizer=spec.normalizer, pre_tokenizer=pre,
                    post_processor=post, decoder=decoder, special_tokens=specials, roles=roles,
                    vocab_size=spec.vocab_size, min_frequency=spec.min_frequency,
                    show_progress=spec.show_progress)


def _check_parts(kind: str, decoder: str, byte_level: bool, metaspace: bool) -> None:
    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise ConfigError("tokenizer.decoder", msg)

    need(decoder != "byte_level" or byte_level, "byte_level decodes byte symbols: it needs "
         "pre_tokenizer byte_level (or leave decoder null)")
    need(decoder != "metaspace" or metaspace, "metaspace needs a metaspace pre_tokenizer "
         "(e.g. bert+metaspace), or leave decoder null")
    need(decoder not in ("bpe", "metaspace") or not byte_level, f"{decoder} cannot follow a "
         "byte_level pre_tokenizer, which marks word starts itself; leave decoder null")
    need(decoder != "bpe" or kind == "bpe", f"decoder bpe ('</w>' suffixes) is for kind bpe, not {kind}")
    need(decoder != "wordpiece" or kind in ("bpe", "wordpiece"),
         f"decoder wordpiece ('##' prefixes) is for kind bpe or wordpiece, not {kind}")
    need(kind != "wordpiece" or decoder in ("wordpiece", "none") or (decoder == "byte_level" and byte_level),
         f"a wordpiece model marks pieces with '##': use decoder wordpiece or null, not {decoder}")
