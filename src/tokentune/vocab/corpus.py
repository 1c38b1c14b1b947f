"""The training text of a vocabulary: the task's train split and/or extra files, checked and capped.

Every problem here is the user's to fix, so each raises a ConfigError that names the key, the
file and the line. The corpus is held in memory (SST-2 is 3.8 MB, tinyshakespeare 1.1 MB): it is
read twice, once for its fingerprint (the cache key) and once by the trainer.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tokentune.errors import ConfigError
from tokentune.vocab.spec import CorpusConfig

KEY = "tokenizer.corpus"


@dataclass
class Corpus:
    texts: list[str]
    sources: list[str]  # what went in, for the log and meta.json

    @property
    def chars(self) -> int:
        return sum(len(t) for t in self.texts)

    def fingerprint(self) -> str:
        """sha256 of the texts, each length-prefixed so that a split point cannot move unseen."""
        h = hashlib.sha256()
        for t in self.texts:
            b = t.encode("utf-8")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
        return h.hexdigest()


def read_lines(path: Path) -> list[str]:
    """One text per line of a UTF-8 file; a bad byte is reported with its line and column."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(f"{KEY}.files", f"{path}: line {line} is not valid UTF-8 (byte "
                          f"0x{data[e.start]:02x} at column {column}); re-encode the file as UTF-8, "
                          f"e.g. `iconv -f latin1 -t utf-8`") from None
    return [line for line in text.splitlines() if line.strip()]


def gather(config: CorpusConfig, task_texts: Iterable[str] | None,
           split_texts: dict[str, list[str]] | None = None) -> Corpus:
    """The task's texts (if include_task), those of config.splits, then each file's lines, cut at
    max_chars. `split_texts`: the task's text per split, labels dropped."""
    texts: list[str] = []
    sources: list[str] = []
    if config.include_task and task_texts is not None:
        task = [t for t in task_texts if t and t.strip()]
        texts += task
        sources.append(f"task train split ({len(task):,} texts)")
    for split in config.splits:
        if split not in (split_texts or {}):
            raise ConfigError(f"{KEY}.splits", f"'{split}' is not a split of this task (it has "
                              f"{sorted(split_texts or {})}); remove it from tokenizer.corpus.splits")
        extra = [t for t in split_texts[split] if t and t.strip()]
        texts += extra
        sources.append(f"task {split} split ({len(extra):,} texts)")
    for name in config.files:
        path = Path(name).expanduser()
        if not path.is_file():
            where = "" if path.is_absolute() else f" (relative paths are read from {Path.cwd()})"
            what = "is a folder, not a text file" if path.is_dir() else "does not exist"
            raise ConfigError(f"{KEY}.files", f"{path} {what}{where}; fix the path or "
                              "remove it from tokenizer.corpus.files")
        lines = read_lines(path)
        texts += lines
        sources.append(f"{path} ({len(lines):,} lines)")
    if config.max_chars is not None:
        texts = _cap(texts, config.max_chars)
    if not texts:
        raise ConfigError(KEY, "the corpus is empty: no non-blank text in "
                          f"{', '.join(sources) or 'any source'}; give the task's train split "
                          "(include_task: true) or non-empty files in tokenizer.corpus.files")
    return Corpus(texts, sources)


def _cap(texts: list[str], max_chars: int) -> list[str]:
    kept, total = [], 0
    for t in texts:
        if total + len(t) >= max_chars:
            if max_chars - total > 0:
                kept.append(t[: max_chars - total])
            break
        kept.append(t)
        total += len(t)
    return kept
