"""The official SQuAD scores, written out here because the official scripts (evaluate-v1.1.py,
evaluate-v2.0.py from rajpurkar.github.io/SQuAD-explorer) are not a pip package: the same answer
normalisation, exact match and token F1, the best over the reference answers, in percent; v1.1's
F1 counts an empty prediction or reference as no overlap, v2.0's gives 1 when both are empty.
For v2.0 also the HasAns/NoAns split and the best no-answer threshold (best_f1, best_f1_thresh)
as evaluate-v2.0.py computes them from its --na-prob-file, our null-score margins in its place.
"""
from __future__ import annotations

import collections
import re
import string
from typing import Optional

ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower case, punctuation removed, articles a/an/the removed, whitespace collapsed."""
    s = "".join(ch for ch in s.lower() if ch not in PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", s).split())


def exact(gold: str, pred: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(pred))


def f1_v1(gold: str, pred: str) -> float:
    return _overlap(normalize_answer(gold).split(), normalize_answer(pred).split())


def f1_v2(gold: str, pred: str) -> float:
    gold_toks, pred_toks = normalize_answer(gold).split(), normalize_answer(pred).split()
    if not gold_toks or not pred_toks:  # a no-answer on either side: 1 if both, else 0
        return float(gold_toks == pred_toks)
    return _overlap(gold_toks, pred_toks)


def _overlap(gold_toks: list[str], pred_toks: list[str]) -> float:
    same = sum((collections.Counter(gold_toks) & collections.Counter(pred_toks)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_toks), same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def scores_v1(references: dict[str, list[str]], preds: dict[str, str]) -> dict[str, float]:
    """evaluate-v1.1.py: every question counts; one without a prediction scores 0."""
    em = f1 = 0.0
    for qid, golds in references.items():
        if qid in preds:
            em += max(exact(g, preds[qid]) for g in golds)
            f1 += max(f1_v1(g, preds[qid]) for g in golds)
    n = len(references)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}


def raw_scores_v2(references: dict[str, list[str]], preds: dict[str, str]) -> tuple[dict, dict]:
    exact_raw, f1_raw = {}, {}
    for qid, answers in references.items():
        golds = [a for a in answers if normalize_answer(a)] or [""]  # unanswerable: only "" is right
        if qid not in preds:  # the official script skips it (and so scores over the predicted ones)
            continue
        exact_raw[qid] = max(exact(g, preds[qid]) for g in golds)
        f1_raw[qid] = max(f1_v2(g, preds[qid]) for g in golds)
    return exact_raw, f1_raw


def _mean(scores: dict, qids) -> float:
    qids = list(qids)
    return 100.0 * sum(scores[q] for q in qids) / len(qids)


def best_threshold(preds: dict[str, str], scores: dict, na_probs: dict[str, float],
                   has_ans: dict[str, bool]) -> tuple[float, float]:
    """evaluate-v2.0.py's find_best_thresh: start from answering nothing, then answer the
    questions in rising order of na_prob, keeping the best total (and the na_prob reached)."""
    cur = best = sum(1 for q in has_ans if not has_ans[q])
    thresh = 0.0
    for qid in sorted(na_probs, key=lambda q: na_probs[q]):
        if qid not in scores:
            continue
        if has_ans[qid]:
            cur += scores[qid]
        else:
            cur += -1 if preds[qid] else 0
        if cur > best:
            best, thresh = cur, na_probs[qid]
    return 100.0 * best / len(scores), thresh


def scores_v2(references: dict[str, list[str]], preds: dict[str, str],
              span_preds: Optional[dict[str, str]] = None,
              na_probs: Optional[dict[str, float]] = None) -> dict[str, float]:
    """evaluate-v2.0.py on `preds` (the null answer is ""): exact_match, f1, HasAns_/NoAns_exact
    and _f1; with the best non-null span of every question (`span_preds`) and how far its null
    score beats that span (`na_probs`, the script's --na-prob-file), best_exact and best_f1 with
    their thresholds: the margin above which answering nothing scores best on this split."""
    has_ans = {qid: bool(answers) for qid, answers in references.items()}
    exact_raw, f1_raw = raw_scores_v2(references, preds)
    out = {"exact_match": _mean(exact_raw, exact_raw), "f1": _mean(f1_raw, f1_raw)}
    for name, want in (("HasAns", True), ("NoAns", False)):
        qids = [q for q in exact_raw if has_ans[q] == want]
        if qids:
            out[f"{name}_exact"] = _mean(exact_raw, qids)
            out[f"{name}_f1"] = _mean(f1_raw, qids)
    if span_preds is not None and na_probs is not None:
        span_exact, span_f1 = raw_scores_v2(references, span_preds)
        out["best_exact"], out["best_exact_thresh"] = best_threshold(span_preds, span_exact, na_probs, has_ans)
        out["best_f1"], out["best_f1_thresh"] = best_threshold(span_preds, span_f1, na_probs, has_ans)
    return out
