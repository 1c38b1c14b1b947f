"""Entity-level precision, recall and F1, as CoNLL-2003 results are reported.

An entity counts as found only when its type and both boundaries match; a wrong boundary or a
wrong type is then both a false positive (the predicted span) and a false negative (the true
one). Scores come from `seqeval` in its default mode, which reads tags as conlleval.pl does: an
I-X after O or after another type starts an entity, as a B-X would. seqeval's strict mode
(mode="strict") would instead drop such an entity, scoring a model lower for tags that conlleval
and the published CoNLL numbers accept.

IOB1 and BIOES tags are converted to IOB2 before scoring. seqeval reads well-formed IOB1 and
BIOES the same either way; the conversion decides only for tags that break BIOES, such as
"S-PER I-PER": one two-word PER (as its IOB2, B-PER I-PER), where conlleval reads two.
"""
from __future__ import annotations

from collections.abc import Sequence

from seqeval.metrics import accuracy_score
from seqeval.metrics.sequence_labeling import get_entities, precision_recall_fscore_support

from tokentune.task.token_classification.tags import to_iob2


def entity_scores(true: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str = "IOB2") -> dict:
    """{"precision", "recall", "f1": micro averages over all entities; "per_type": {TYPE:
    {"precision", "recall", "f1", "support" (true entities)}} for each type in either list;
    "accuracy": the share of words whose tag is right, on the tags as given}. IOB1 and BIOES tags
    are converted to IOB2 first. A score with nothing to divide by (no entities) is 0."""
    if not true:
        raise ValueError("no sentences to score")
    if len(true) != len(pred):
        raise ValueError(f"{len(true)} true sentences but {len(pred)} predicted")
    for i, (t, p) in enumerate(zip(true, pred)):
        if len(t) != len(p):
            raise ValueError(f"sentence {i}: {len(t)} true tags but {len(p)} predicted")
    accuracy = accuracy_score([list(t) for t in true], [list(p) for p in pred])
    true = [to_iob2(t, scheme) for t in true]
    pred = [to_iob2(p, scheme) for p in pred]
    # seqeval's own per-type order (classification_report names them so too, but it also averages
    # an empty array, with a warning, when there is no entity at all)
    types = sorted({t for t, _, _ in get_entities(true)} | {t for t, _, _ in get_entities(pred)})
    per_type = zip(types, *precision_recall_fscore_support(true, pred, average=None, zero_division=0),
                   strict=True)
    micro = precision_recall_fscore_support(true, pred, average="micro", zero_division=0)
    return {"precision": float(micro[0]), "recall": float(micro[1]), "f1": float(micro[2]),
            "per_type": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
                         for name, p, r, f, n in per_type},
            "accuracy": float(accuracy)}
