"""The vocabulary report: how a tokenizer cuts a task's text, beside the backbone's own.

Words are the same for every tokenizer: `tokenizers`' Whitespace pre-tokenizer (\\w+ or runs of
punctuation) on the raw text. Per split:
- tokens, unk_rate (unknown tokens / tokens), fertility (tokens / words), without special tokens;
- mean_length, p95_length: tokens per text as the model sees them, special tokens included;
- words_kept_whole: share of word occurrences covered by exactly one (known) token.
Vocabulary: size, overlap with the base (non-special tokens whose text, markers undone, is a
base token at the same word position) and embedding parameters (vocab × dim).
Against the base (a different tokenizer only), per split, as shares of the base's tokens:
- changed: no new token has the same text and the same span (a trimmed vocabulary: 0 on its corpus);
- became_unknown: a known base token now inside an unknown one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers

from tokentune.atomic import json_text, write_atomic
from tokentune.vocab.surface import OldVocab, Scheme, piece


def vocab_report(tokenizer, base_tokenizer, texts: dict[str, list[str]], embedding_dim: int) -> dict:
    same = tokenizer is base_tokenizer
    report = {
        "name": tokenizer.name_or_path or None,
        "vocab_size": len(tokenizer),
        "base_vocab_size": len(base_tokenizer),
        "embedding_dim": embedding_dim,
        "embedding_params": len(tokenizer) * embedding_dim,
        "base_embedding_params": len(base_tokenizer) * embedding_dim,
        "overlap": _overlap(tokenizer, base_tokenizer),
        "splits": {split: split_stats(tokenizer, t) for split, t in texts.items()},
    }
    report["base_splits"] = report["splits"] if same else \
        {split: split_stats(base_tokenizer, t) for split, t in texts.items()}
    if not same:
        report["vs_base"] = {split: vs_base(tokenizer, base_tokenizer, t) for split, t in texts.items()}
    return report


def vs_base(tokenizer, base_tokenizer, texts: list[str]) -> dict:
    new, old = (_backend(t).encode_batch(texts, add_special_tokens=False) for t in (tokenizer, base_tokenizer))
    unk, base_unk = tokenizer.unk_token, base_tokenizer.unk_token
    n_old = changed = became_unknown = 0
    for e_new, e_old in zip(new, old, strict=True):
        same = set(zip(e_new.offsets, e_new.tokens))
        unknown = [span for span, t in same if t == unk]
        for span, token in zip(e_old.offsets, e_old.tokens):
            n_old += 1
            if (span, token) in same:
                continue
            changed += 1
            if token != base_unk and any(s <= span[0] and span[1] <= e for s, e in unknown):
                became_unknown += 1
    return {"base_tokens": n_old, "changed": changed / max(n_old, 1),
            "became_unknown": became_unknown / max(n_old, 1)}


def _backend(tokenizer) -> Tokenizer:
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def split_stats(tokenizer, texts: list[str]) -> dict:
    encs = _backend(tokenizer).encode_batch(texts, add_special_tokens=False)
    words = _word_splitter().encode_batch(texts)
    ids = np.fromiter((i for e in encs for i in e.ids), dtype=np.int64)
    lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
    unk = tokenizer.unk_token_id
    n_unk = int((ids == unk).sum()) if unk is not None else 0
    n_words = sum(len(w.ids) for w in words)
    seq = lengths + tokenizer.num_special_tokens_to_add(pair=False)
    return {
        "texts": len(texts), "words": n_words, "tokens": int(ids.size),
        "unk_rate": n_unk / max(ids.size, 1),
        "fertility": ids.size / max(n_words, 1),
        "mean_length": float(seq.mean()) if len(seq) else 0.0,
        "p95_length": float(np.percentile(seq, 95)) if len(seq) else 0.0,
        "words_kept_whole": _kept_whole(texts, encs, words, ids, unk) / max(n_words, 1),
    }


def _word_splitter() -> Tokenizer:
    """Whitespace pre-tokenization in one batched Rust call: each word becomes one (unknown) token."""
    tok = Tokenizer(models.WordLevel({"[w]": 0}, unk_token="[w]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


def _kept_whole(texts, encs, words, ids: np.ndarray, unk) -> int:
    """Word occurrences overlapped by exactly one token, a known one.

    All spans go on one axis (text i shifted past the texts before it); tokens are ordered, so
    the tokens overlapping word [ws, we) are those from the first ending after ws to the last
    starting before we — two binary searches for every word at once.
    """
    if not texts:
        return 0
    shift = np.cumsum([0] + [len(t) + 1 for t in texts[:-1]], dtype=np.int64)
    tok = _spans(encs, shift)
    word = _spans(words, shift)
    if len(word) == 0:
        return 0
    first = np.searchsorted(tok[:, 1], word[:, 0], side="right")
    last = np.searchsorted(tok[:, 0], word[:, 1], side="left")
    one = (last - first) == 1
    if unk is not None and len(ids):
        one &= ids[np.minimum(first, len(ids) - 1)] != unk
    return int(one.sum())


def _spans(encs, shift: np.ndarray) -> np.ndarray:
    counts = np.fromiter((len(e.offsets) for e in encs), dtype=np.int64, count=len(encs))
    flat = np.array([o for e in encs for o in e.offsets], dtype=np.int64).reshape(-1, 2)
    return flat + np.repeat(shift, counts)[:, None]


def _overlap(tokenizer, base_tokenizer) -> dict:
    if tokenizer is base_tokenizer:
        n = len(tokenizer) - len(tokenizer.all_special_ids)
        return {"tokens": n, "share": 1.0}
    base = OldVocab(base_tokenizer)
    scheme = Scheme.of(tokenizer.backend_tokenizer)
    specials = set(tokenizer.all_special_tokens)
    tokens = [t for t in tokenizer.get_vocab() if t not in specials]
    found = sum(1 for t in tokens if base.find(piece(t, scheme)) is not None)
    return {"tokens": found, "share": found / max(len(tokens), 1)}


def model_sizes(model, vocab_size: int, base_vocab_size: int, *, checkpoint_mb: float | None,
                model_mb: float | None) -> dict:
    """What the vocabulary did to the whole model, for a finished run: total parameters with the
    run's vocabulary and with the base's (each vocabulary-sized matrix scaled: the input
    embeddings, and an untied output layer), the best checkpoint's and the exported model's size."""
    from tokentune.model.packed import transformers_model

    hf = transformers_model(model)
    embeddings, output = hf.get_input_embeddings().weight, hf.get_output_embeddings()
    matrices = 1 + (output is not None and output.weight is not embeddings)
    total = sum(p.numel() for p in model.parameters())
    return {"total_params": total,
            "base_total_params": total + (base_vocab_size - vocab_size) * embeddings.shape[1] * matrices,
            "checkpoint_mb": checkpoint_mb, "model_mb": model_mb}


def format_report(report: dict) -> str:
    """A markdown summary: the vocabulary, then one row per split for the new and base tokenizer."""
    ov = report["overlap"]
    lines = [
        f"vocabulary: {report['vocab_size']:,} tokens (base {report['base_vocab_size']:,}); "
        f"{ov['tokens']:,} ({ov['share']:.1%}) also in the base vocabulary",
        f"embedding parameters: {report['embedding_params']:,} "
        f"(base {report['base_embedding_params']:,}, dim {report['embedding_dim']})",
    ]
    if "total_params" in report:  # a finished run
        sizes = [f"{report[k]:,.1f} MB {what}" for k, what in (("checkpoint_mb", "best checkpoint"),
                                                             ("model_mb", "exported model"))
                 if report.get(k) is not None]
        lines.append(f"model parameters: {report['total_params']:,} (base {report['base_total_params']:,})"
                     + "".join(f"; {size}" for size in sizes))
    lines += [
        "",
        "| tokenizer | split | texts | tokens | unk rate | fertility | mean len | p95 len | words whole |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = [("new", report["splits"])]
    if report["base_splits"] is not report["splits"]:
        rows.append(("base", report["base_splits"]))
    for who, splits in rows:
        for split, s in splits.items():
            lines.append(f"| {who} | {split} | {s['texts']:,} | {s['tokens']:,} | {s['unk_rate']:.2%} | "
                         f"{s['fertility']:.3f} | {s['mean_length']:.1f} | {s['p95_length']:.0f} | "
                         f"{s['words_kept_whole']:.1%} |")
    if "vs_base" in report:
        lines += ["", "| split | base tokens | changed | became unknown |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {split} | {v['base_tokens']:,} | {v['changed']:.2%} | {v['became_unknown']:.2%} |"
                  for split, v in report["vs_base"].items()]
    return "\n".join(lines)


# A vocabulary built or trimmed on the train split loses the other splits' rarer tokens to unknown:
# above this share of a split's base tokens, a run says so (the accuracy it costs is real: the
# demo's validation split loses 11.7 % under tokenizer=trim: tests/vocab/test_report.py)
LOST_TO_UNKNOWN = 0.01


def unknown_warnings(report: dict, corpus_splits) -> list[str]:
    """One line per split outside the vocabulary's corpus that lost more than LOST_TO_UNKNOWN
    of its base tokens to unknown, naming the key that adds its text to the corpus."""
    return [f"{v['became_unknown']:.1%} of the {split} split's tokens became unknown with this "
            f"vocabulary (its corpus is the train split{''.join(', ' + s for s in corpus_splits)}); "
            f"add tokenizer.corpus.splits=[{', '.join([*corpus_splits, split])}] to keep them"
            for split, v in report.get("vs_base", {}).items()
            if split != "train" and split not in corpus_splits and v["became_unknown"] > LOST_TO_UNKNOWN]


def write_report(report: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """vocab_report.json (atomically: temp file + rename) and vocab_report.md in out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "vocab_report.json", out / "vocab_report.md")
    bodies = (json_text(report, indent=2, sort_keys=True, default=str) + "\n",
              f"# Vocabulary report\n\n{format_report(report)}\n")
    for path, body in zip(paths, bodies, strict=True):
        write_atomic(path, body)
    return paths
