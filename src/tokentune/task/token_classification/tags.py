"""Entity tag schemes: checking them, converting them to IOB2, and the label list.

A tag is "O" or PREFIX-TYPE ("B-PER"); the type is everything after the first "-", as seqeval
reads it. The schemes differ in their prefixes and in where an entity starts:
- IOB2 (CoNLL-2003 as the hub and ../shared/data hold it): B- starts every entity, I- continues.
- IOB1 (the original CoNLL-2003 distribution): I- starts an entity too; B- appears only where an
  entity directly follows another of the same type.
- BIOES: B- begins, I- continues, E- ends a multi-word entity; S- is a one-word entity.
Everything downstream (labels, metrics) works on IOB2, so `to_iob2` is the one conversion.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tokentune.errors import UserError
from tokentune.task.token_classification.conll import TaggedSentence

SCHEMES = ("IOB1", "IOB2", "BIOES")
PREFIXES = {"IOB1": ("B", "I"), "IOB2": ("B", "I"), "BIOES": ("B", "I", "E", "S")}
OUTSIDE = "O"


def split_tag(tag: str) -> tuple[str, str | None]:
    """("B", "PER") for "B-PER", ("O", None) for "O"; ValueError for anything else."""
    if tag == OUTSIDE:
        return OUTSIDE, None
    prefix, sep, type_ = tag.partition("-")
    if not sep or not prefix or not type_:
        raise ValueError(f"'{tag}' is neither O nor PREFIX-TYPE")
    return prefix, type_


def _prefixes(scheme: str) -> tuple[str, ...]:
    if scheme not in PREFIXES:
        raise ValueError(f"scheme '{scheme}' is not one of {SCHEMES}")
    return PREFIXES[scheme]


def check_scheme(sentences: Iterable[TaggedSentence], scheme: str, path: str | Path) -> None:
    """UserError at the first tag that is not O or one of the scheme's PREFIX-TYPE forms.
    (IOB1 and IOB2 tags look alike: IOB1 read as IOB2 passes here, and shows as violations.)"""
    prefixes = _prefixes(scheme)
    for s in sentences:
        for i, tag in enumerate(s.tags or ()):
            try:
                prefix, _ = split_tag(tag)
            except ValueError:
                prefix = None
            if prefix != OUTSIDE and prefix not in prefixes:
                forms = ", ".join(f"{p}-TYPE" for p in prefixes)
                raise UserError(f"{path}:{s.token_line(i)}: tag '{tag}' (token '{s.tokens[i]}') is "
                                f"not a {scheme} tag (O, {forms}); fix the tag or set the scheme the "
                                "file uses")


def to_iob2(tags: Sequence[str], scheme: str) -> list[str]:
    """One sentence's tags in IOB2: IOB1's entity-starting I-X becomes B-X; BIOES's S-X becomes
    B-X and E-X becomes I-X; IOB2 tags are returned as they are."""
    _prefixes(scheme)
    if scheme == "IOB2":
        return list(tags)
    out = []
    prev_type = None
    for tag in tags:
        prefix, type_ = split_tag(tag)
        if scheme == "IOB1" and prefix == "I" and type_ != prev_type:
            prefix = "B"
        elif scheme == "BIOES":
            prefix = {"S": "B", "E": "I"}.get(prefix, prefix)
        out.append(tag if prefix == OUTSIDE else f"{prefix}-{type_}")
        prev_type = type_
    return out


def count_violations(sentences_tags: Iterable[Sequence[str]], scheme: str) -> int:
    """I-X tags that start an entity once the tags are in IOB2: after O, after another type, or
    first in the sentence. Counted, not fatal (seqeval reads each as the start of an entity, as
    conlleval does); many of them in data said to be IOB2 usually mean it is IOB1."""
    count = 0
    for tags in sentences_tags:
        prev_type = None
        for tag in to_iob2(tags, scheme):
            prefix, type_ = split_tag(tag)
            count += prefix == "I" and type_ != prev_type
            prev_type = type_
    return count


def collect_labels(sentences: Iterable[TaggedSentence]) -> list[str]:
    """The label list, whatever the order of the rows: "O", then each entity type seen, in
    alphabetical order, with every prefix of the scheme (B, I; or B, I, E, S when any E- or S-
    tag occurs). Every prefix, seen or not: B-X always has the I-X that continues it (a split
    whose X entities are all one word still has an I-X label for the other splits and for
    sub-tokens, see align.begin_to_inside)."""
    types: set[str] = set()
    prefixes: set[str] = set()
    for s in sentences:
        for tag in s.tags or ():
            prefix, type_ = split_tag(tag)
            if type_ is not None:
                types.add(type_)
                prefixes.add(prefix)
    scheme = PREFIXES["BIOES"] if prefixes & {"E", "S"} else PREFIXES["IOB2"]
    return [OUTSIDE] + [f"{p}-{t}" for t in sorted(types) for p in scheme]


def check_labels(sentences: Iterable[TaggedSentence], labels: Sequence[str], path: str | Path) -> None:
    """UserError at the first tag that is not in `labels` (e.g. a validation tag the train
    split never has), naming its file and line and listing the labels."""
    known = set(labels)
    for s in sentences:
        for i, tag in enumerate(s.tags or ()):
            if tag not in known:
                raise UserError(f"{path}:{s.token_line(i)}: tag '{tag}' (token '{s.tokens[i]}') is not "
                                f"one of the {len(labels)} labels [{', '.join(labels)}]; fix the tag "
                                "or add it to the labels")
