"""A small SQuAD-layout set whose answers follow from the text (a tiny random-init model learns it
in a few hundred steps): "what colour is the fox ?" over a context where one sentence gives the
fox's colour and the rest none (a tiny model does not learn, in a
few hundred steps, to tell which animal a second colour sentence is about); v2.0's unanswerable questions ask for an
animal whose colour the context does not give. Written as the original SQuAD JSON."""
from __future__ import annotations

import json
import random
from pathlib import Path

ANIMALS = "fox cat dog owl hen cow pig ram bee ant".split()
COLOURS = "red blue green black white yellow brown purple orange grey".split()
FILLER = ["the {a} sleeps in the barn .", "the {a} eats grass at noon .", "a farmer feeds the {a} .",
          "the {a} runs to the river .", "nobody saw the {a} today ."]


def paragraph(rng: random.Random, n: int, *, impossible: bool, sentences: int) -> dict:
    animal = rng.choice(ANIMALS)
    others = [a for a in ANIMALS if a != animal]
    parts = [rng.choice(FILLER).format(a=rng.choice(others)) for _ in range(sentences)]
    answers = []
    if not impossible:
        colour = rng.choice(COLOURS)
        parts.insert(rng.randrange(len(parts) + 1), f"the {animal} is {colour} .")
    context = " ".join(parts)
    if not impossible:
        answers = [{"text": colour, "answer_start": context.index(f"the {animal} is {colour} .") + len(f"the {animal} is ")}]
    qa = {"id": f"q{n}", "question": f"what colour is the {animal} ?", "answers": answers}
    if impossible:
        qa["is_impossible"] = True
    return {"context": context, "qas": [qa]}


def squad_json(n: int, seed: int, *, impossible: float = 0.0, sentences: int = 6) -> dict:
    rng = random.Random(seed)
    paragraphs = [paragraph(rng, seed * 100_000 + i, impossible=rng.random() < impossible,
                            sentences=rng.randint(1, sentences)) for i in range(n)]
    return {"version": "v2.0" if impossible else "1.1", "data": [{"title": "farm", "paragraphs": paragraphs}]}


def task_folder(folder: Path, *, train: int = 400, validation: int = 60, impossible: float = 0.0,
                sentences: int = 6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train.json", train, 0), ("dev.json", validation, 1)):
        (folder / name).write_text(json.dumps(squad_json(n, seed, impossible=impossible, sentences=sentences)))
    return folder


def overrides(folder: Path, *, version_2: bool = False) -> list[str]:
    """conf/task/squad(_v2).yaml on `folder`, with windows short enough that contexts span several."""
    return [f"task={'squad_v2' if version_2 else 'squad'}", f"task.data_dir={folder}",
            "task.splits.train.path=train.json", "task.splits.validation.path=dev.json",
            "task.hub_dataset=null", "data.max_length=48", "task.doc_stride=16"]
