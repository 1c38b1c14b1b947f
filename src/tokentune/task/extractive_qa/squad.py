"""Questions with their context and reference answers, from the original SQuAD JSON, JSON lines
or the hub (rajpurkar/squad, rajpurkar/squad_v2), each checked where it is read: a bad row stops
in one line that names the file and the question id."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tokentune.errors import UserError


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    # (text, character offset in the context) of each reference answer; () for an unanswerable
    # question (v2.0); None where the split carries no answers (predictions only)
    answers: Optional[tuple[tuple[str, int], ...]]
    where: str = field(default="", compare=False)  # the file (or hub split) it was read from

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def read_qa(task, split: str) -> list[QAExample]:
    """One split: local files first (task.format squad or jsonl), the hub as the fallback."""
    import io

    from tokentune.data.readers import hub_split, json_rows, read_text, refuse_folder, split_path

    path = split_path(task, split)
    labelled = split == "train" or split in task.validation_splits
    if task.format != "hub" and (path.is_file() or not task.hub_dataset):
        refuse_folder(path, split)
        text = read_text(path)
        rows = (squad_rows(path, text) if task.format == "squad"
                else [row for _, row in json_rows(path, io.StringIO(text))])
        where = str(path)
    else:
        ds, where = hub_split(task, split, path)
        rows = list(ds)
    examples = [example(row, where, labelled=labelled, version_2=task.version_2) for row in rows]
    if not examples:
        raise UserError(f"{where}: no questions")
    seen: set[str] = set()
    for e in examples:
        if e.id in seen:  # the predictions file is keyed by id
            raise UserError(f"{where}: question id {e.id}: appears twice")
        seen.add(e.id)
    return examples


def squad_rows(path: Path, text: str) -> list[dict]:
    """The original layout: data[].paragraphs[].{context, qas[].{id, question, answers, is_impossible}}."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{err.lineno}: not valid JSON ({err.msg}); task.format=squad reads "
                        "the original SQuAD JSON (task.format=jsonl: one question per line)") from None
    layout = "not the SQuAD layout (data[].paragraphs[].{context, qas[]})"
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise UserError(f"{path}: {layout}: no top-level 'data' list")
    rows = []
    for a, article in enumerate(doc["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise UserError(f"{path}: {layout}: data[{a}] has no 'paragraphs' list")
        for p, paragraph in enumerate(paragraphs):
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("qas"), list):
                raise UserError(f"{path}: {layout}: data[{a}].paragraphs[{p}] has no 'qas' list")
            for qa in paragraph["qas"]:
                if not isinstance(qa, dict):
                    raise UserError(f"{path}: {layout}: data[{a}].paragraphs[{p}].qas holds a "
                                    f"{type(qa).__name__}, not a question")
                rows.append({**qa, "context": paragraph.get("context")})
    return rows


def _answers(raw: Any, where: str) -> list[tuple[Any, Any]]:
    """(text, answer_start) pairs from SQuAD's list of objects or the hub's object of lists."""
    if isinstance(raw, dict):
        texts, starts = raw.get("text"), raw.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise UserError(f"{where}: 'answers' needs lists 'text' and 'answer_start' of one length")
        return list(zip(texts, starts))
    if isinstance(raw, list):
        if not all(isinstance(a, dict) and "text" in a and "answer_start" in a for a in raw):
            raise UserError(f"{where}: each answer needs 'text' and 'answer_start'")
        return [(a["text"], a["answer_start"]) for a in raw]
    raise UserError(f"{where}: 'answers' is a {type(raw).__name__}, not a list of "
                    "{text, answer_start} (or the hub's {text: [...], answer_start: [...]})")


def example(row: dict, where: str, *, labelled: bool, version_2: bool) -> QAExample:
    qid = row.get("id")
    if not isinstance(qid, (str, int)) or isinstance(qid, bool) or str(qid) == "":
        raise UserError(f"{where}: a question without an 'id' (question {row.get('question')!r})")
    here = f"{where}: question id {qid}"
    question, context = row.get("question"), row.get("context")
    for name, value in (("question", question), ("context", context)):
        if not isinstance(value, str):
            raise UserError(f"{here}: no '{name}' text")
        if not value.strip():
            raise UserError(f"{here}: an empty {name}")
    if "answers" not in row:
        if labelled:
            raise UserError(f"{here}: no 'answers' (train and validation questions need them)")
        return QAExample(str(qid), question, context, None, where)
    answers = []
    for text, start in _answers(row["answers"], here):
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{here}: an empty answer text")
        if not isinstance(start, int) or isinstance(start, bool):
            raise UserError(f"{here}: answer_start {start!r} is not a character offset")
        if context[start:start + len(text)] != text:
            raise UserError(f"{here}: the answer {text!r} is not at answer_start {start} of the context "
                            f"(there: {context[start:start + len(text)]!r})")
        answers.append((text, start))
    impossible = bool(row.get("is_impossible", False)) or not answers
    if impossible and not version_2:
        raise UserError(f"{here}: an unanswerable question (v2.0 data) in a v1.1 task; "
                        "use task=squad_v2 (task.version_2=true)")
    return QAExample(str(qid), question, context, () if impossible else tuple(answers), where)
