"""Trim mode: the backbone's own tokenizer cut down to the tokens it produces on the corpus.

Kept ids stay in their old order (so [PAD]=0 stays first); every id-bearing part of
tokenizer.json (model vocabulary, merges, added tokens, post-processor) is rewritten through one
old → new map, and the embedding rows follow the same map (`vocab.induction`). Exact on the corpus:
- WordPiece: greedy longest match. At each position the original took the longest vocabulary
  token there; it is kept and nothing longer was in the vocabulary, so the subset takes it too. A
  word the original made [UNK] fails at the same place or earlier: [UNK] again.
- BPE: merges apply lowest rank first. Kept: every symbol no merge produces (byte-level: the 256
  bytes, so nothing is ever unknown), the produced tokens, and for each kept token the operands of
  every merge that yields it, down to the symbols; then every merge whose operands and result are
  all kept. Each merge the original applied to a corpus word builds a kept token, so it is in the
  subset, and the subset holds no lower-ranked merge the original lacked: same merges, same order.
A cap (max_tokens, min_frequency) drops the rarest tokens; text that used them falls back to
smaller pieces (WordPiece: then [UNK]; byte-level BPE: down to bytes).
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from tokenizers import Tokenizer

from tokentune.errors import ConfigError, UserError

MODELS = ("WordPiece", "BPE")


def count_tokens(backend: Tokenizer, texts: Iterable[str]) -> Counter:
    """How often the backend produces each id on `texts`, special tokens of the template excluded."""
    backend = Tokenizer.from_str(backend.to_str())
    backend.no_padding()
    backend.no_truncation()
    return Counter(i for enc in backend.encode_batch(list(texts), add_special_tokens=False) for i in enc.ids)


def trim(backend: Tokenizer, counts: Counter, special_tokens: Iterable[str], *,
         max_tokens: int | None, min_frequency: int) -> Tokenizer:
    """`backend` restricted to `special_tokens`, its added tokens and the ids in `counts` (most
    frequent first, at most max_tokens in all, none seen fewer than min_frequency times)."""
    data = json.loads(backend.to_str())
    model = data["model"]
    if model["type"] not in MODELS:
        raise UserError(f"tokenizer.mode: trim knows {' and '.join(MODELS)} tokenizers, not this "
                        f"backbone's {model['type']}; use tokenizer=pretrained or a mode=replace vocabulary")
    vocab: dict[str, int] = model["vocab"]
    token_of = {i: t for t, i in vocab.items()}
    token_of.update({a["id"]: a["content"] for a in data["added_tokens"]})
    # added tokens are matched before the model, so a missing one would change the text's split
    required = {*special_tokens, *(a["content"] for a in data["added_tokens"]),
                *_processor_tokens(data["post_processor"])}
    if model.get("unk_token"):
        required.add(model["unk_token"])
    needs = _closure(model) if model["type"] == "BPE" else {}
    symbols = {t for t in vocab if t not in needs} - required if model["type"] == "BPE" else set()
    if model["type"] == "BPE" and not model["merges"]:
        raise ConfigError("model.tokenizer", f"this backbone tokenizer has no merges: its "
                          f"{len(symbols):,} tokens are all base symbols that trim must keep, so "
                          "there is nothing to trim (a made-up tokenizer such as 'bytes'?); use "
                          "tokenizer=pretrained")
    kept = required | symbols
    floor = len(kept)
    if max_tokens is not None and max_tokens < floor:
        what = f"{len(required)} special tokens" + (
            f" + {len(symbols):,} symbols no merge makes (byte-level: the 256 bytes)" if symbols else "")
        raise ConfigError("tokenizer.max_tokens", f"{max_tokens:,} is fewer than the {floor:,} tokens "
                          f"every trimmed vocabulary of this backbone keeps ({what}); set at least "
                          f"{floor:,}, or null for every token the corpus produces")
    ranked = sorted((i for i, n in counts.items() if n >= max(min_frequency, 1) and token_of[i] not in kept),
                    key=lambda i: (-counts[i], i))
    if not ranked:
        raise ConfigError("tokenizer.corpus", f"the corpus yields no token beyond the {floor:,} that "
                          f"every trimmed vocabulary of this backbone keeps (special tokens"
                          f"{' and base symbols' if symbols else ''}); give it real text"
                          f"{', or lower tokenizer.min_frequency' if min_frequency > 1 else ''}")
    for i in ranked:
        new = {token_of[i], *needs.get(token_of[i], ())} - kept
        if max_tokens is None or len(kept) + len(new) <= max_tokens:
            kept |= new
    new_id = {old: new for new, old in enumerate(sorted(vocab[t] if t in vocab else
                                                        _added_id(data, t) for t in kept))}
    model["vocab"] = {t: new_id[i] for t, i in vocab.items() if i in new_id}
    if model["type"] == "BPE":
        model["merges"] = [m for m in model["merges"] if all(t in model["vocab"] for t in _merge(model, m))]
    for added in data["added_tokens"]:
        added["id"] = new_id[added["id"]]
    _remap_processor(data["post_processor"], new_id)
    return Tokenizer.from_str(json.dumps(data))


def _added_id(data: dict, token: str) -> int:
    found = [a["id"] for a in data["added_tokens"] if a["content"] == token]
    if not found:
        raise UserError(f"model.tokenizer: special token {token!r} is not in the backbone tokenizer's "
                        "vocabulary; its tokenizer files do not belong together")
    return found[0]


def _merge(model: dict, merge: Any) -> tuple[str, str, str]:
    """(left, right, result) of one merge, either JSON spelling ("a b" or ["a", "b"])."""
    left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
    prefix = model.get("continuing_subword_prefix") or ""
    return left, right, left + (right[len(prefix):] if prefix and right.startswith(prefix) else right)


def _closure(model: dict) -> dict[str, set[str]]:
    """Each merge-made token → every token any of its merges needs, down to the base symbols."""
    makers: dict[str, list[tuple[str, str]]] = {}
    for m in model["merges"]:
        left, right, result = _merge(model, m)
        makers.setdefault(result, []).append((left, right))
    done: dict[str, set[str]] = {}
    for token in makers:
        stack, seen = [token], set()
        while stack:
            for pair in makers.get(stack.pop(), ()):
                for part in pair:
                    if part not in seen:
                        seen.add(part)
                        stack.append(part)
        done[token] = seen
    return done


def _processor_tokens(node: dict | None) -> set[str]:
    if not node:
        return set()
    kind = node["type"]
    if kind == "TemplateProcessing":
        return {t for spec in node["special_tokens"].values() for t in spec["tokens"]}
    if kind in ("BertProcessing", "RobertaProcessing"):
        return {node["sep"][0], node["cls"][0]}
    if kind == "Sequence":
        return set().union(*(_processor_tokens(p) for p in node["processors"]))
    return set()


def _remap_processor(node: dict | None, new_id: dict[int, int]) -> None:
    if not node:
        return
    kind = node["type"]
    if kind == "TemplateProcessing":
        for spec in node["special_tokens"].values():
            spec["ids"] = [new_id[i] for i in spec["ids"]]
    elif kind in ("BertProcessing", "RobertaProcessing"):
        for part in ("sep", "cls"):
            node[part][1] = new_id[node[part][1]]
    elif kind == "Sequence":
        for p in node["processors"]:
            _remap_processor(p, new_id)
