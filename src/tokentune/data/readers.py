"""Read a task's split into `Example`s, checking every row against the task config.

Local files come first (task.data_dir); the Hugging Face hub (task.hub_dataset) is the fallback.
Every problem names the file and line and says what to do.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from tokentune.config import TaskConfig
from tokentune.errors import UserError
from tokentune.task import get_kind

log = logging.getLogger(__name__)
Label = Union[int, float, None]


@dataclass(frozen=True)
class Example:
    text_a: str
    text_b: Optional[str]
    label: Label  # class index, regression target, or None (unlabeled split)
    index: Optional[str]  # the row id written back in predictions


def split_path(task: TaskConfig, split: str) -> Path:
    return Path(task.data_dir or ".") / task.splits[split].path


def refuse_folder(path: Path, split: str) -> None:
    """A folder where a split's file should be: said as such, not as a file not found."""
    if path.is_dir():
        raise UserError(f"{path}: a folder, not a data file; point task.splits.{split}.path at a file")


def read_text(path: Path) -> str:
    """A whole UTF-8 file as text mode reads it (no byte-order mark, LF line ends); undecodable
    bytes are reported with their line."""
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # Windows tools start UTF-8 files with a byte-order mark
    except UnicodeDecodeError as err:
        line = err.object[: err.start].count(b"\n") + 1  # err.start counts from after the mark
        raise UserError(f"{path}:{line}: not valid UTF-8 ({err.reason}); re-save the file as UTF-8") from None
    if not text.strip():
        raise UserError(f"{path}: the file is empty")
    # Universal newlines: a file saved with CRLF endings reads exactly like one saved with LF
    return io.StringIO(text, newline=None).read()


def read_split(task: TaskConfig, split: str) -> list[Example]:
    if split not in task.splits:
        raise UserError(f"task.splits: task '{task.name}' has no '{split}' split "
                        f"(it has {sorted(task.splits)})")
    path = split_path(task, split)
    refuse_folder(path, split)
    if path.is_file():
        return _read_file(task, split, path)
    if task.hub_dataset:
        return _read_hub(task, split, path)
    raise UserError(f"{path}: file not found; set task.data_dir (for GLUE tasks: GLUE_DIR or "
                    f"paths.glue_dir) to the folder that holds it")


def _rows(task: TaskConfig, split: str, path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row as a column → value dict) for every data row of a file."""
    # Lines end at "\n" only: str.splitlines would also cut fields at U+2028, U+0085 and the like
    lines = io.StringIO(read_text(path))
    if task.format == "jsonl":
        return json_rows(path, lines)
    return _table_rows(task, split, path, lines)


def json_rows(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, dict]]:
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{n}: malformed JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{n}: each line must be a JSON object")
            yield n, row


def _table_rows(task: TaskConfig, split: str, path: Path,
                lines: Iterable[str]) -> Iterator[tuple[int, dict]]:
    # GLUE's TSVs are unquoted and hold literal " characters: QUOTE_NONE reads them as text.
    quoting = csv.QUOTE_NONE if task.format == "tsv" else csv.QUOTE_MINIMAL
    delimiter = "\t" if task.format == "tsv" else ","
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(lines, delimiter=delimiter, quoting=quoting)
    header = task.splits[split].header
    header = task.header if header is None else header
    if header:
        names = next(reader)
    else:
        if not task.column_names:
            raise UserError(f"task.column_names: {path} has no header row (task.header=false); "
                            "list the column names")
        names = task.column_names
    start, skipped = reader.line_num + 1, []
    for fields in reader:
        # a quoted CSV field can hold newlines: a record's line is the one it starts on
        n, start = start, reader.line_num + 1
        if not any(field.strip() for field in fields):
            continue  # blank lines, as exports often leave at the end, are no rows
        if len(fields) != len(names):
            if task.skip_malformed_rows:
                skipped.append(n)
                continue
            raise UserError(f"{path}:{n}: expected {len(names)} fields ({', '.join(names)}), "
                            f"found {len(fields)}; is the row malformed or the format wrong? "
                            "(task.skip_malformed_rows=true skips such rows)")
        yield n, dict(zip(names, fields))
    if skipped:
        log.warning("%s: skipped %d rows with a wrong number of fields (task.skip_malformed_rows), "
                    "lines %s", path, len(skipped), ", ".join(map(str, skipped[:10])) + (" ..." if len(skipped) > 10 else ""))


def _read_file(task: TaskConfig, split: str, path: Path) -> list[Example]:
    examples = []
    kind = get_kind(task.kind)
    columns: Optional[list[str]] = None
    for n, row in _rows(task, split, path):
        if columns is None:
            columns = _columns(task, split, path, row)
        missing = [col for col in columns if col not in row]
        if missing:  # only a JSON line can lack a key that the first row has
            raise UserError(f"{path}:{n}: no '{missing[0]}' key (the first line has one); add it "
                            "or delete this line")
        labelled = task.label_column in columns
        label = kind.parse_label(task, row[task.label_column], f"{path}:{n}") if labelled else None
        examples.append(_example(task, row, label))
    if not examples:
        raise UserError(f"{path}: no data rows")
    return examples


def _columns(task: TaskConfig, split: str, path: Path, first_row: dict) -> list[str]:
    """The columns every row must have: the text columns, and the label column where the first
    row has one."""
    for col in task.text_columns:
        if col not in first_row:
            raise UserError(f"{path}: no column '{col}' (columns: {', '.join(first_row)}); "
                            "fix task.text_columns")
    labelled = task.label_column is not None and task.label_column in first_row
    if split in ("train", "validation") and not labelled:
        raise UserError(f"{path}: no label column '{task.label_column}' "
                        f"(columns: {', '.join(first_row)}); fix task.label_column")
    return task.text_columns + ([task.label_column] if labelled else [])


def _example(task: TaskConfig, row: dict, label: Label) -> Example:
    texts = [str(row[c]) for c in task.text_columns]
    index = str(row[task.index_column]) if task.index_column and task.index_column in row else None
    return Example(texts[0], texts[1] if len(texts) > 1 else None, label, index)


def check_empty(task: TaskConfig, texts: dict[str, list[str]], max_share: float) -> None:
    """Refuse a split whose examples (`texts`: one string each, all of its text) are all blank,
    or more than `max_share` of them (data.max_empty_share)."""
    for split, examples in texts.items():
        empty = sum(1 for text in examples if not text.strip())
        if not empty:
            continue
        path = split_path(task, split) if split in task.splits else None
        source = path if path is not None and path.is_file() else f"the hub's {task.hub_dataset}"
        where = f"task.splits.{split} ({source})"
        if empty == len(examples):
            raise UserError(f"{where}: all {empty:,} examples are empty; are task.text_columns "
                            "the columns that hold the text?")
        if empty / len(examples) > max_share:
            raise UserError(f"{where}: {empty:,} of {len(examples):,} examples are empty "
                            f"({empty / len(examples):.1%}), more than data.max_empty_share="
                            f"{max_share:g}; fix or drop those rows, or raise data.max_empty_share")


def hub_split(task: TaskConfig, split: str, missing: Path):
    """(the hub's copy of `split`, where it came from) for a task whose local file `missing` is
    not there; one line when `datasets` is not installed or the hub cannot be reached."""
    spec = task.splits[split]
    subset, name = spec.hub_subset or task.hub_subset, spec.hub_split or split
    where = f"{task.hub_dataset}/{subset or ''} [{name}]"
    try:
        import datasets
    except ImportError:
        raise UserError(f"{missing} not found and reading {where} from the hub needs the "
                        "`datasets` package: pip install datasets — or point task.data_dir "
                        "(GLUE_DIR for GLUE) at a local copy") from None
    from tokentune.compat.huggingface_hub import fail_at_first_connection_error

    fail_at_first_connection_error()
    try:
        return datasets.load_dataset(task.hub_dataset, subset, split=name), where
    except Exception as err:  # network errors come in many types; all mean the same to a user
        raise UserError(f"{missing} not found, and {where} could not be loaded from the Hugging "
                        f"Face hub ({type(err).__name__}). Offline? Download the data once and set "
                        "task.data_dir (GLUE_DIR or paths.glue_dir for GLUE) to it") from None


def _read_hub(task: TaskConfig, split: str, missing: Path) -> list[Example]:
    ds, where = hub_split(task, split, missing)
    examples, kind = [], get_kind(task.kind)
    for n, row in enumerate(ds):
        row = dict(row)
        if "idx" in row and task.index_column and task.index_column not in row:
            row[task.index_column] = row["idx"]  # the hub copy of GLUE calls it idx
        raw = row.get(task.label_column) if task.label_column else None
        label = None
        if raw is not None and raw != -1:  # the hub marks unlabeled test rows with -1
            label = kind.parse_label(task, raw, f"{where} row {n}", hub=True)
        examples.append(_example(task, row, label))
    return examples
