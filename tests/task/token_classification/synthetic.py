"""A small tagged corpus whose tags follow from the words alone (a tiny random-init model learns it
in a few hundred steps), written as CoNLL files for a task folder."""
from __future__ import annotations

import random
from pathlib import Path

ENTITIES = {"PER": ["alice", "bob", "carol smith", "dave jones"],
            "LOC": ["paris", "london", "new york", "berlin"],
            "ORG": ["acme corp", "globex", "initech", "umbrella group"]}
FILLER = "the a of and to in met visited said that was with from for on at by".split()
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def sentences(n: int, seed: int) -> list[list[tuple[str, str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words: list[tuple[str, str]] = []
        for _ in range(rng.randint(3, 8)):
            if rng.random() < 0.35:
                type_ = rng.choice(sorted(ENTITIES))
                parts = rng.choice(ENTITIES[type_]).split()
                words += [(w, ("B-" if i == 0 else "I-") + type_) for i, w in enumerate(parts)]
            else:
                words.append((rng.choice(FILLER), "O"))
        out.append(words)
    return out


def write_conll(path: Path, rows: list[list[tuple[str, str]]], *, tags: bool = True, crlf: bool = False) -> Path:
    end = "\r\n" if crlf else "\n"
    text = end.join(end.join(f"{w}\t{t}" if tags else w for w, t in s) + end for s in rows)
    path.write_text(text, newline="")
    return path


def task_folder(folder: Path, *, train: int = 400, validation: int = 80, test: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_conll(folder / "train.txt", sentences(train, 0))
    write_conll(folder / "valid.txt", sentences(validation, 1))
    if test:
        write_conll(folder / "test.txt", sentences(test, 2), tags=False)
    return folder


def overrides(folder: Path) -> list[str]:
    """A CoNLL-2003-style task on `folder` (conf/task/conll2003.yaml with the synthetic labels)."""
    return ["task=conll2003", f"task.data_dir={folder}", f"task.labels=[{','.join(LABELS)}]",
            "task.hub_dataset=null"]
