"""The `tokenizer` config group's schema: which vocabulary a run uses and how it is built.

Field names follow the `tokenizers` pipeline (normalizer → pre_tokenizer → model → post_processor
→ decoder). `None` means "what the model family expects", resolved in `vocab.pipeline` once the
backbone's tokenizer is known. Values are checked in `__post_init__`, which OmegaConf runs when a
composed config becomes this dataclass, so `tokenizer.vocab_size=-3` fails at composition.
Only dataclasses and tokentune.errors here: this module is on the `--cfg job` start-up path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional  # OmegaConf schemas: the typing forms every 2.x reads

from tokentune.errors import check

KINDS = ("pretrained", "bpe", "byte_bpe", "wordpiece", "unigram")
MODES = ("replace", "extend", "trim")
INDUCTIONS = ("fvt", "copy", "random")
# Parts are named like the `tokenizers` classes; "none" = no such part. A normalizer or
# pre-tokenizer may chain several with "+" (a `Sequence`), e.g. "nfkc+lowercase", "bert+metaspace".
NORMALIZERS = ("bert", "bert_cased", "nfc", "nfd", "nfkc", "nfkd", "lowercase", "strip_accents",
               "none")
PRE_TOKENIZERS = ("bert", "whitespace", "whitespace_split", "punctuation", "digits", "metaspace",
                  "byte_level", "none")
POST_PROCESSORS = ("bert", "byte_level", "none")
DECODERS = ("wordpiece", "bpe", "metaspace", "byte_level", "none")
# The largest tokenizer.vocab_size accepted: far above the vocabularies models use (BERT 30,522,
# GPT-2 50,257), far below what the trainers cannot reserve. BPE and WordPiece reserve room for
# every requested token before they count a word, about 71 bytes each: vocab_size=1,000,000,000
# asked for 70.9 GB and aborted the process (a Rust panic, no Python error) on a 23 GB machine.
MAX_VOCAB_SIZE = 2**20


def _chain_ok(value: Optional[str], names: tuple[str, ...]) -> bool:
    parts = [] if value is None else [part.strip() for part in value.split("+")]
    return all(p in names for p in parts) and ("none" not in parts or len(parts) == 1)


@dataclass
class CorpusConfig:
    """The text a vocabulary is trained on (extend mode: where new words are counted)."""

    files: List[str] = field(default_factory=list)  # extra UTF-8 text files, one text per line
    include_task: bool = True  # the task's train split (what the caller passes as `corpus`)
    max_chars: Optional[int] = None  # cap on the corpus size, in characters, first texts first
    # trim mode: the unlabelled text of these task splits too (e.g. [validation, test]), so the
    # trimmed model reads them exactly as the backbone did
    splits: List[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check(self.max_chars is None or self.max_chars > 0, "tokenizer.corpus.max_chars",
              f"must be a positive number of characters or null, got {self.max_chars}")
        check(self.include_task or len(self.files) > 0, "tokenizer.corpus",
              "include_task=false needs at least one file in tokenizer.corpus.files")
        check(len(set(self.splits)) == len(self.splits) and "train" not in self.splits,
              "tokenizer.corpus.splits", f"{self.splits}: name each split once, and not train "
              "(include_task already brings it)")


@dataclass
class TokenizerConfig:
    name: str = "pretrained"
    kind: str = "pretrained"  # pretrained | bpe | byte_bpe | wordpiece | unigram
    # replace: a new vocabulary; extend: the backbone's + extend_tokens words; trim: the backbone's
    # restricted to the tokens it produces on the corpus (exact there; embedding rows copied)
    mode: str = "replace"
    vocab_size: int = 32000  # an upper bound: the trainer stops earlier on a small corpus (replace)
    # BPE/WordPiece merges and extend-mode words seen fewer times are skipped (Unigram has no such
    # setting); 0, the trainers' default, reproduces design.md's 19,314 tokens on SST-2
    min_frequency: int = 0
    normalizer: Optional[str] = None  # None = the backbone tokenizer's own (BERT uncased: bert)
    # None = the family's (tokentune/model/families.py): BERT bert, GPT-2 byte_level; byte_bpe byte_level
    pre_tokenizer: Optional[str] = None
    post_processor: Optional[str] = None  # None = the family's: BERT bert ([CLS] a [SEP] b [SEP]) / byte_level
    decoder: Optional[str] = None  # None = the kind's own; bpe + decoder=bpe adds </w> suffixes
    special_tokens: Optional[List[str]] = None  # None = the family's; given = all of them, id order
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    induction: str = "fvt"  # fvt | copy | random: how new embedding rows are initialised
    extend_tokens: int = 2000  # extend mode: how many words to add
    # trim mode: at most this many tokens in all (None = every token the corpus produces). Not
    # vocab_size: its 32,000 default would silently cut GPT-2's 50,257 on a large corpus
    max_tokens: Optional[int] = None
    show_progress: bool = True  # the trainers' progress bars (does not change the result)

    def __post_init__(self) -> None:
        check(self.kind in KINDS, "tokenizer.kind", f"'{self.kind}' is not one of {KINDS}")
        check(self.mode in MODES, "tokenizer.mode", f"'{self.mode}' is not one of {MODES}")
        check(self.mode == "replace" or self.kind == "pretrained", "tokenizer.mode",
              f"{self.mode} {'adds whole words to' if self.mode == 'extend' else 'cuts down'} the "
              f"backbone's own tokenizer, so it needs "
              f"tokenizer.kind=pretrained (got kind={self.kind}); use mode=replace to train a "
              f"new {self.kind} vocabulary")
        check(self.max_tokens is None or self.mode == "trim", "tokenizer.max_tokens",
              f"caps a trimmed vocabulary (mode=trim), not mode={self.mode}; use "
              "tokenizer.vocab_size")
        check(self.max_tokens is None or self.max_tokens > 0, "tokenizer.max_tokens",
              f"must be a positive number of tokens or null, got {self.max_tokens}")
        check(self.vocab_size > 0, "tokenizer.vocab_size",
              f"must be a positive number of tokens, got {self.vocab_size}")
        check(self.vocab_size <= MAX_VOCAB_SIZE, "tokenizer.vocab_size",
              f"{self.vocab_size:,} is above {MAX_VOCAB_SIZE:,}, the most tokentune builds (the "
              "trainers reserve memory for every requested token up front); a corpus yields far "
              "fewer (it is an upper bound): lower it")
        check(self.min_frequency >= 0, "tokenizer.min_frequency",
              f"must be 0 or more, got {self.min_frequency}")
        check(self.extend_tokens > 0, "tokenizer.extend_tokens",
              f"must be a positive number of tokens, got {self.extend_tokens}")
        check(self.induction in INDUCTIONS, "tokenizer.induction",
              f"'{self.induction}' is not one of {INDUCTIONS}")
        for key, value, names in (("normalizer", self.normalizer, NORMALIZERS),
                                  ("pre_tokenizer", self.pre_tokenizer, PRE_TOKENIZERS)):
            check(_chain_ok(value, names), f"tokenizer.{key}",
                  f"'{value}' is not null or one of {names} (join several with '+')")
        check(self.pre_tokenizer is None or "byte_level" not in self.pre_tokenizer.split("+")[:-1],
              "tokenizer.pre_tokenizer", "byte_level must come last: it turns text into byte symbols "
              "that no later pre-tokenizer understands")
        for key, value, names in (("post_processor", self.post_processor, POST_PROCESSORS),
                                  ("decoder", self.decoder, DECODERS)):
            check(value is None or value in names, f"tokenizer.{key}",
                  f"'{value}' is not null or one of {names}")
        if self.special_tokens is not None:
            check(len(self.special_tokens) > 0 and all(self.special_tokens), "tokenizer.special_tokens",
                  "give a non-empty list of non-empty strings, or null for the family's own")
            check(len(set(self.special_tokens)) == len(self.special_tokens),
                  "tokenizer.special_tokens", f"{self.special_tokens} has duplicates")
        if isinstance(self.corpus, dict):  # built by hand from a plain dict (tests, scripts)
            self.corpus = CorpusConfig(**self.corpus)

    @property
    def trains(self) -> bool:
        """Whether this spec builds anything (the backbone's tokenizer unchanged does not)."""
        return self.kind != "pretrained" or self.mode != "replace"
