"""Word-tagged sentences from CoNLL-style column files and from JSON lines.

    read_conll("train.txt")                         # token ... tag, blank line between sentences
    read_tagged_jsonl("train.jsonl", tags_key="ner_tags", label_names=[...])

Both return `TaggedSentence`s, each with the line it starts on so that a later check (an unknown
tag, a tag outside the scheme) can name the file and line. Every problem in the file raises a
one-line UserError naming the file and line and what to do.
"""
from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tokentune.data.readers import read_text
from tokentune.errors import UserError

DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class TaggedSentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...] | None  # None: an unlabelled split
    line: int  # 1-based line of the first token
    # True (CoNLL): token i is on line `line + i`; False (JSON lines): every token is on `line`
    one_per_line: bool = False

    def token_line(self, i: int) -> int:
        return self.line + i if self.one_per_line else self.line


def read_conll(path: str | Path, *, tag_column: int = -1, labelled: bool = True) -> list[TaggedSentence]:
    """Sentences from a file of one token a line: the token in the first column, its tag in column
    `tag_column` (Python indexing: -1 = the last), a blank line between sentences. Columns are
    split at tabs when the line has one (a token may then hold spaces), else at any whitespace.
    `-DOCSTART-` lines (the original CoNLL-2003 layout) end a sentence and are skipped.
    labelled=False reads the tokens only (a one-column file, or tags ignored)."""
    path = Path(path)
    lines = io.StringIO(_text(path))
    sentences: list[TaggedSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0

    def flush() -> None:
        if tokens:
            sentences.append(TaggedSentence(tuple(tokens), tuple(tags) if labelled else None, start,
                                            one_per_line=True))
            tokens.clear()
            tags.clear()

    for n, line in enumerate(lines, 1):
        line = line.strip()
        columns = [c.strip() for c in line.split("\t")] if "\t" in line else line.split()
        if not columns or columns[0] == DOCSTART:
            flush()
            continue
        if not tokens:
            start = n
        tokens.append(columns[0])
        if labelled:
            tags.append(_tag(path, n, columns, tag_column))
    flush()
    if not sentences:
        raise UserError(f"{path}: no sentences (expected one token a line, a blank line between "
                        "sentences); is this the right file?")
    return sentences


def _tag(path: Path, n: int, columns: list[str], tag_column: int) -> str:
    if len(columns) < 2:
        raise UserError(f"{path}:{n}: '{columns[0]}' has no tag column; give every token a tag, "
                        "or read the file with labelled=False if it has none")
    if not -len(columns) <= tag_column < len(columns):
        raise UserError(f"{path}:{n}: tag_column {tag_column} is out of range for a line of "
                        f"{len(columns)} columns; set tag_column to the column that holds the tags")
    if tag_column % len(columns) == 0:
        raise UserError(f"{path}:{n}: tag_column {tag_column} is the token column; set tag_column "
                        "to the column that holds the tags")
    tag = columns[tag_column]
    if not tag:
        raise UserError(f"{path}:{n}: '{columns[0]}' has an empty tag (column {tag_column}); give "
                        "every token a tag")
    return tag


def read_tagged_jsonl(path: str | Path, *, tokens_key: str = "tokens", tags_key: str = "tags",
                      labelled: bool = True, label_names: Sequence[str] | None = None) -> list[TaggedSentence]:
    """Sentences from one JSON object a line: a list of tokens and a list of as many tags, each
    a string or, with `label_names`, an index into it (the hub's eriktks/conll2003 stores
    `ner_tags` as ints). Blank lines are skipped, and so are lines whose only token is
    `-DOCSTART-`, as in read_conll."""
    path = Path(path)
    sentences = []
    for n, line in enumerate(io.StringIO(_text(path)), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{n}: malformed JSON ({err.msg} at column {err.colno}); each "
                            "line must be one JSON object") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{n}: each line must be a JSON object, not {type(row).__name__}")
        tokens = _tokens(path, n, row, tokens_key)
        if tokens == [DOCSTART]:
            continue
        tags = _tags(path, n, row, tags_key, len(tokens), label_names) if labelled else None
        sentences.append(TaggedSentence(tuple(tokens), tags, n))
    if not sentences:
        raise UserError(f"{path}: no sentences (expected one JSON object a line); is this the right file?")
    return sentences


def _tokens(path: Path, n: int, row: dict, key: str) -> list[str]:
    tokens = _list(path, n, row, key, "tokens_key", "tokens")
    if not tokens:
        raise UserError(f"{path}:{n}: '{key}' is an empty list; delete this line")
    for i, token in enumerate(tokens):
        # a token with nothing visible gives the tokenizer nothing to put its tag on
        if not isinstance(token, str) or not token.strip():
            raise UserError(f"{path}:{n}: token {i} ({token!r}) is not a non-blank string; every "
                            f"token in '{key}' must be one")
    return tokens


def _tags(path: Path, n: int, row: dict, key: str, count: int,
          label_names: Sequence[str] | None) -> tuple[str, ...]:
    tags = _list(path, n, row, key, "tags_key", "tags")
    if len(tags) != count:
        raise UserError(f"{path}:{n}: {count} tokens but {len(tags)} tags; give each token one tag")
    out = []
    for i, tag in enumerate(tags):
        if isinstance(tag, str) and tag:
            out.append(tag)
        elif isinstance(tag, int) and not isinstance(tag, bool):
            if label_names is None:
                raise UserError(f"{path}:{n}: tag {i} is the number {tag}; pass label_names (the "
                                "tag names in id order) to read numbered tags")
            if not 0 <= tag < len(label_names):
                raise UserError(f"{path}:{n}: tag {i} is {tag}, not an index into the "
                                f"{len(label_names)} label_names {list(label_names)}")
            out.append(label_names[tag])
        else:
            raise UserError(f"{path}:{n}: tag {i} ({tag!r}) is neither a tag name nor a number")
    return tuple(out)


def _list(path: Path, n: int, row: dict, key: str, setting: str, what: str) -> list:
    if key not in row:
        raise UserError(f"{path}:{n}: no '{key}' key (keys: {', '.join(row)}); set {setting} to "
                        f"the key that holds the {what}")
    value = row[key]
    if not isinstance(value, list):
        raise UserError(f"{path}:{n}: '{key}' is {type(value).__name__}, not a list of {what}")
    return value


def _text(path: Path) -> str:
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a file; give the path of the file inside it")
    return read_text(path)
