"""A run's vocabulary: the backbone's own, or one built once with `tokenizers` and then reused.

    load_or_build(spec, base_tokenizer=..., family="bert", corpus=train_texts, cache_dir=...)

kind=pretrained (mode replace) returns the backbone's tokenizer itself. Anything else is keyed by
a sha256 of what decides the result — the resolved pipeline (normalizer, pre-tokenizer, model,
trainer settings, special tokens, post-processor), the family, the backbone tokenizer (extend and
trim modes), the corpus text and the `tokenizers` version — and trained only when that key is not in
the cache (see `vocab.cache` for the locking and atomic write). The trainer stops where the corpus
runs out of merges: the size reached is logged and recorded, never padded to `vocab_size`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import Tokenizer

from tokentune.errors import ConfigError, UserError
from tokentune.model.families import get_family
from tokentune.vocab import cache
from tokentune.vocab.corpus import Corpus, gather
from tokentune.vocab.extend import add_words, choose_words, count_words
from tokentune.vocab.pipeline import Pipeline, resolve
from tokentune.vocab.spec import TokenizerConfig
from tokentune.vocab.trim import count_tokens, trim

log = logging.getLogger(__name__)

FORMAT = 1  # bump when a change here changes what a cache folder holds
ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


@dataclass
class BuildInfo:
    """What load_or_build_info did; `built` is False on a cache hit (and for kind=pretrained)."""

    name: str
    kind: str
    mode: str
    built: bool
    vocab_size: int  # tokens reached, special tokens included
    requested: int | None = None  # vocab_size (replace) / extend_tokens (extend) / max_tokens (trim)
    added: int = 0  # extend mode: words added; trim mode: minus the tokens removed
    seconds: float = 0.0  # training time when it was built
    corpus_texts: int = 0
    corpus_chars: int = 0
    path: str | None = None  # the cache folder: tokenizer.json, tokenizer_config.json, meta.json
    key: str | None = None


def as_spec(spec: Any) -> TokenizerConfig:
    """A TokenizerConfig from itself, a DictConfig (checked on the way) or a plain mapping."""
    if isinstance(spec, TokenizerConfig):
        return spec
    from omegaconf import DictConfig, OmegaConf

    if isinstance(spec, DictConfig):
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TokenizerConfig), spec))
    return TokenizerConfig(**dict(spec))


def load_or_build(spec: Any, *, base_tokenizer, family: str, corpus: Iterable[str] | None,
                  cache_dir: str | Path, splits: dict[str, list[str]] | None = None):
    """The run's tokenizer (a transformers PreTrainedTokenizerFast); see load_or_build_info."""
    return load_or_build_info(spec, base_tokenizer=base_tokenizer, family=family, corpus=corpus,
                              cache_dir=cache_dir, splits=splits)[0]


def load_or_build_info(spec: Any, *, base_tokenizer, family: str, corpus: Iterable[str] | None,
                       cache_dir: str | Path, splits: dict[str, list[str]] | None = None):
    """(tokenizer, BuildInfo). `corpus` is the task's train texts (pairs: both sides as texts);
    `splits` the text of every split, for tokenizer.corpus.splits."""
    spec = as_spec(spec)
    get_family(family)  # an unknown family stops here, before any corpus is read
    if not spec.trains:
        return base_tokenizer, BuildInfo(spec.name, spec.kind, spec.mode, built=False,
                                         vocab_size=len(base_tokenizer))
    data = gather(spec.corpus, corpus, splits)
    max_len = int(base_tokenizer.model_max_length)
    base_sha = hashlib.sha256(base_tokenizer.backend_tokenizer.to_str().encode()).hexdigest()
    if spec.mode == "extend":
        label = "extend"
        recipe: dict[str, Any] = {
            "base": base_sha, "extend_tokens": spec.extend_tokens, "min_frequency": spec.min_frequency,
            "wrapper": _base_wrapper_kwargs(base_tokenizer, family)}
        make = lambda: _extend(spec, base_tokenizer, family, data)  # noqa: E731
    elif spec.mode == "trim":
        label = "trim"
        recipe = {"base": base_sha, "specials": list(base_tokenizer.all_special_tokens),
                  "max_tokens": spec.max_tokens, "min_frequency": spec.min_frequency,
                  "wrapper": _base_wrapper_kwargs(base_tokenizer, family)}
        make = lambda: _trim(spec, base_tokenizer, family, data)  # noqa: E731
    else:
        label = spec.kind
        pipe = resolve(spec, family)
        untrained = pipe.untrained(base_tokenizer.backend_tokenizer.normalizer)
        recipe = {"pipeline": json.loads(untrained.to_str()), "post_processor": pipe.post_processor,
                  "trainer": {"vocab_size": pipe.vocab_size, "min_frequency": pipe.min_frequency,
                              "special_tokens": pipe.special_tokens, "marker": pipe.marker},
                  "wrapper": pipe.wrapper_kwargs(max_len)}
        make = lambda: _train(spec, pipe, untrained, data, max_len)  # noqa: E731
    key = hashlib.sha256(json.dumps(
        {"format": FORMAT, "tokenizers": tokenizers.__version__, "family": family, "mode": spec.mode,
         "recipe": recipe, "corpus": data.fingerprint()}, sort_keys=True).encode()).hexdigest()
    folder = Path(cache_dir) / f"{label}-{key[:16]}"
    tok, meta, built = cache.load_or_make(folder, lambda: _with_meta(make, spec, family, data, key))
    info = BuildInfo(spec.name, spec.kind, spec.mode, built=built, vocab_size=meta["vocab_size"],
                     requested=meta["requested"], added=meta["added"], seconds=meta["seconds"],
                     corpus_texts=len(data.texts), corpus_chars=data.chars, path=str(folder), key=key)
    if not built:
        log.info("vocab %s: %s tokens, loaded from %s", spec.name, f"{info.vocab_size:,}", folder)
    return tok, info


def load_built(folder: str | Path):
    """The tokenizer a build left in `folder` (BuildInfo.path), checked like a cache hit."""
    try:
        return cache.load(Path(folder))[0]
    except cache.Corrupt as e:
        raise UserError(f"{folder}: not a usable tokentune vocabulary ({e}); rebuild it by "
                        "running the same tokenizer config again") from None


def _with_meta(make, spec: TokenizerConfig, family: str, data: Corpus, key: str):
    start = time.perf_counter()
    tok, meta = make()
    meta.update(name=spec.name, kind=spec.kind, mode=spec.mode, family=family, key=key,
                format=FORMAT, tokenizers=tokenizers.__version__, spec=asdict(spec),
                seconds=round(time.perf_counter() - start, 3),
                vocab_size=tok.backend_tokenizer.get_vocab_size(with_added_tokens=True),
                corpus={"texts": len(data.texts), "chars": data.chars, "sources": data.sources,
                        "sha256": data.fingerprint()})
    return tok, meta


def _train(spec: TokenizerConfig, pipe: Pipeline, tok: Tokenizer, data: Corpus, max_len: int):
    log.info("vocab %s: training %s (up to %s tokens) on %s texts, %s characters: %s", spec.name,
             spec.kind, f"{spec.vocab_size:,}", f"{len(data.texts):,}", f"{data.chars:,}",
             "; ".join(data.sources))
    start = time.perf_counter()
    try:
        tok.train_from_iterator(data.texts, trainer=pipe.trainer(), length=len(data.texts))
    except Exception as e:  # Unigram refuses outright when the alphabet does not fit
        if "not large enough" in str(e):
            raise _too_small(spec, pipe, tok, data, None) from None
        raise
    tok = pipe.finish(tok)
    reached = tok.get_vocab_size(with_added_tokens=True)
    if reached > spec.vocab_size:  # BPE/WordPiece keep the whole alphabet whatever the size
        raise _too_small(spec, pipe, tok, data, None if spec.kind == "unigram" else reached)
    log.info("vocab %s: %s tokens reached (asked %s) in %.1f s", spec.name, f"{reached:,}",
             f"{spec.vocab_size:,}", time.perf_counter() - start)
    wrapper = cache.wrap(tok, pipe.wrapper_kwargs(max_len))
    return wrapper, {"requested": spec.vocab_size, "added": 0, "wrapper": pipe.wrapper_kwargs(max_len)}


def _too_small(spec, pipe: Pipeline, tok: Tokenizer, data: Corpus, needed: int | None) -> ConfigError:
    n_special = len(pipe.special_tokens)
    if needed is None:  # count the symbols the trainer must keep: every character of every word
        symbols: set[str] = set()
        norm, pre = tok.normalizer, tok.pre_tokenizer
        for text in data.texts:
            text = norm.normalize_str(text) if norm else text
            for word, _ in (pre.pre_tokenize_str(text) if pre else [(text, None)]):
                symbols.update(word)
        if pipe.byte_level:
            symbols.update(tokenizers.pre_tokenizers.ByteLevel.alphabet())
        needed = len(symbols) + n_special
    return ConfigError("tokenizer.vocab_size",
                       f"{spec.vocab_size:,} is smaller than this corpus's alphabet plus special "
                       f"tokens ({needed:,} = {needed - n_special:,} symbols + {n_special} special "
                       f"tokens); set tokenizer.vocab_size to at least {needed:,}")


def _base_wrapper_kwargs(base, family: str) -> dict[str, Any]:
    roles = {r: str(getattr(base, r)) for r in ROLES if getattr(base, r, None) is not None}
    return {**roles, "model_max_length": int(base.model_max_length),
            "model_input_names": list(base.model_input_names or get_family(family).input_names),
            "padding_side": base.padding_side}


def _extend(spec: TokenizerConfig, base, family: str, data: Corpus):
    backend = Tokenizer.from_str(base.backend_tokenizer.to_str())
    start = time.perf_counter()
    counts = count_words(backend, data.texts)
    words = choose_words(backend, counts, spec.extend_tokens, spec.min_frequency)
    if len(words) < spec.extend_tokens:
        log.info("vocab %s: only %s words are split by the backbone tokenizer (asked %s)",
                 spec.name, f"{len(words):,}", f"{spec.extend_tokens:,}")
    kwargs = _base_wrapper_kwargs(base, family)
    wrapper = cache.wrap(add_words(backend, words), kwargs)
    log.info("vocab %s: %s + %s words = %s tokens in %.1f s (most split: %s)", spec.name,
             f"{len(base):,}", f"{len(words):,}", f"{len(wrapper):,}", time.perf_counter() - start,
             ", ".join(words[:8]))
    return wrapper, {"requested": spec.extend_tokens, "added": len(words), "wrapper": kwargs}


def _trim(spec: TokenizerConfig, base, family: str, data: Corpus):
    start = time.perf_counter()
    backend = base.backend_tokenizer
    counts = count_tokens(backend, data.texts)
    trimmed = trim(backend, counts, base.all_special_tokens, max_tokens=spec.max_tokens,
                   min_frequency=spec.min_frequency)
    kwargs = _base_wrapper_kwargs(base, family)
    wrapper = cache.wrap(trimmed, kwargs)
    log.info("vocab %s: %s → %s tokens (%s produced on %s texts: %s) in %.1f s", spec.name,
             f"{len(base):,}", f"{len(wrapper):,}", f"{len(counts):,}", f"{len(data.texts):,}",
             "; ".join(data.sources), time.perf_counter() - start)
    return wrapper, {"requested": spec.max_tokens, "added": len(wrapper) - len(base), "wrapper": kwargs}
