"""`tokentune-predict ckpt_path=... text=...|pair=...|input=...`: a checkpoint run over raw text.

One JSON line per example, in input order, on stdout and (written whole) in
the command's own folder's predictions.jsonl (outputs/predict/<time>/):

- classification: {"text": ..., "label": "1", "probabilities": {"0": 0.1, "1": 0.9}}
- regression:     {"text": ..., "value": 3.2}
- causal LM:      {"text": prompt, "continuation": "..."}  (greedy, `max_new_tokens` tokens at most)
- extractive QA:  {"question": ..., "context": ..., "answer": "...", "start": 12, "end": 17, "score": 0.9}
                  (question=... context=..., or pair=/input= with the keys question and context;
                  v2.0's null answer is "", start and end null)

A two-text task's "text" is the pair [a, b]. The input is read and checked against the task
(from the checkpoint's config, a cheap read) before the data and the model are loaded, so a
mistake costs seconds. The texts are encoded by the datamodule's own code with the run's
tokenizer, the weights are the checkpoint's (restored as Lightning restores them, PEFT included)
and every batch goes through `TaskModule.forward`, eager.
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from tokentune.errors import ConfigError, UserError
from tokentune.run.restore import inference_weights, restore
from tokentune.task import get_kind

Texts = tuple[str, ...]  # (text_a,) or (text_a, text_b)
SOURCES = ("text", "pair", "input", "question")
FORMATS = ("txt", "jsonl")


def raw_text_mode(cfg: DictConfig) -> bool:
    return any(cfg.get(key) is not None for key in SOURCES)


def predict_text(cfg: DictConfig) -> Path:
    from tokentune.config import TrainConfig, from_dict
    from tokentune.run.checkpoint_file import read_checkpoint

    given = [key for key in SOURCES if cfg.get(key) is not None]
    if len(given) > 1:
        raise UserError(f"{' and '.join(given)}: give one of text=, pair= or input=, not several"
                        + (" (question= goes with context=)" if "question" in given else ""))
    if cfg.get("split") is not None:
        raise UserError(f"split: predictions are for a split (split=...) or for raw text "
                        f"({given[0]}=...), not both")
    if cfg.batch_size < 1:
        raise ConfigError("batch_size", f"must be at least 1, got {cfg.batch_size}")
    if cfg.max_new_tokens < 1:
        raise ConfigError("max_new_tokens", f"must be at least 1, got {cfg.max_new_tokens}")
    # the task decides what a valid input is: read from the checkpoint (memory-mapped, no model)
    train_cfg: TrainConfig = from_dict(read_checkpoint(cfg.ckpt_path)["hyper_parameters"]["cfg"])
    examples = read_examples(cfg, train_cfg.task)

    train_cfg, dm, module, trainer = restore(cfg)
    model = inference_weights(cfg.ckpt_path, module, trainer)
    rows = get_kind(train_cfg.task.kind).predict_text(cfg, train_cfg, dm, model, trainer, examples)

    from tokentune.atomic import json_text, write_atomic

    text = "".join(json_text(row, ensure_ascii=False) + "\n" for row in rows)  # strict JSON: nan is null
    out = Path(cfg.paths.output_dir) / "predictions.jsonl"
    write_atomic(out, text)
    sys.stdout.write(text)
    sys.stdout.flush()
    print(f"wrote {len(rows)} predictions to {out}", file=sys.stderr, flush=True)
    return out


# -- input ---------------------------------------------------------------------------------
def read_examples(cfg: DictConfig, task) -> list[Texts]:
    """The examples `cfg` gives (text=, pair= or input=), each checked against the task: as many
    texts as it has text columns (one prompt for a causal LM), none empty."""
    width = len(get_kind(task.kind).input_keys(task))
    if cfg.get("input") is not None:
        return _read_input(str(cfg.input), cfg.get("input_format"), task, width)
    if cfg.get("question") is not None:
        return _questions(cfg, task)
    key = "text" if cfg.get("text") is not None else "pair"
    value = OmegaConf.to_container(cfg[key]) if OmegaConf.is_config(cfg[key]) else cfg[key]
    if key == "text" and width == 2:
        raise UserError(f"text: task '{task.name}' takes two texts per example "
                        f"({', '.join(task.text_columns)}); give pair='[first, second]' "
                        "(or pair='[[a1, b1], [a2, b2]]')")
    if key == "pair" and width == 1:
        raise UserError(f"pair: task '{task.name}' takes one text per example"
                        f"{_columns(task)}; give text='...' (or text='[a, b]' for several)")
    if key == "text":
        items = value if isinstance(value, list) else [value]
        examples = []
        for n, item in enumerate(items, 1):
            where = f"text: item {n}" if isinstance(value, list) else "text"
            if isinstance(item, (list, dict)):
                raise UserError(f"{where} is a {type(item).__name__}, not a text; task "
                                f"'{task.name}' takes one text per example")
            examples.append((_text(item, where),))
    else:
        # one pair [a, b], or a list of pairs
        single = not isinstance(value, list) or not any(isinstance(v, (list, dict)) for v in value)
        items = [value] if single else value
        examples = []
        for n, item in enumerate(items, 1):
            where = "pair" if single else f"pair: item {n}"
            if not isinstance(item, list) or len(item) != 2:
                raise UserError(f"{where} is not a pair of two texts [first, second] "
                                f"(task '{task.name}' takes {', '.join(task.text_columns)})")
            examples.append(tuple(_text(t, where) for t in item))
    if not examples:
        raise UserError(f"{key}: an empty list; give at least one example")
    return examples


def _questions(cfg: DictConfig, task) -> list[Texts]:
    """question= with context=: one text each, or lists of one length."""
    if get_kind(task.kind).input_keys(task) != ["question", "context"]:
        raise UserError(f"question: task '{task.name}' takes no questions; give text= or pair=")
    if cfg.get("context") is None:
        raise UserError("question: needs context='...' (the text the answer is read from)")
    given = [OmegaConf.to_container(cfg[k]) if OmegaConf.is_config(cfg[k]) else cfg[k] for k in ("question", "context")]
    lists = [v if isinstance(v, list) else [v] for v in given]
    if len(lists[0]) != len(lists[1]):
        raise UserError(f"question: {len(lists[0])} questions for {len(lists[1])} contexts; give one context each")
    return [(_text(q, f"question: item {n}"), _text(c, f"context: item {n}"))
            for n, (q, c) in enumerate(zip(*lists), 1)]


def _columns(task) -> str:
    return f" ({get_kind(task.kind).input_keys(task)[0]})"


def _text(value: Any, where: str) -> str:
    if value is None or isinstance(value, bool):
        raise UserError(f"{where}: {value!r} is not a text")
    text = str(value)
    if not text.strip():
        raise UserError(f"{where}: an empty text")
    return text


def _read_input(source: str, fmt: Optional[str], task, width: int) -> list[Texts]:
    """input=-: standard input; input=<file>. Format: input_format, else .jsonl → jsonl, other → txt."""
    from tokentune.data.readers import json_rows, read_text

    if fmt is not None and fmt not in FORMATS:
        raise ConfigError("input_format", f"'{fmt}' is not one of {FORMATS} (or null: from the suffix)")
    if source == "-":
        name, raw = "<stdin>", sys.stdin.buffer.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            line = err.object[: err.start].count(b"\n") + 1
            raise UserError(f"{name}:{line}: not valid UTF-8 ({err.reason})") from None
        text = io.StringIO(text, newline=None).read()
        if not text.strip():
            raise UserError(f"{name}: no input (one example per line)")
        fmt = fmt or "txt"
    else:
        path = Path(source)
        if not path.is_file():
            raise UserError(f"input: {path} " + ("is a folder" if path.is_dir() else "not found")
                            + "; give a .txt or .jsonl file (or - for standard input)")
        name, text = str(path), read_text(path)  # UTF-8, BOM and CRLF handled as for task files
        fmt = fmt or ("jsonl" if path.suffix == ".jsonl" else "txt")
    # lines end at "\n" only (as the task readers): str.splitlines would also cut at U+2028 etc.
    lines = text.split("\n")
    if fmt == "jsonl":  # parsed as the task readers parse a .jsonl split
        examples = [_jsonl_row(row, f"{name}:{n}", task) for n, row in json_rows(name, lines)]
    else:  # blank lines, as editors leave at the end, are no examples
        examples = [_txt_line(line, f"{name}:{n}", task, width)
                    for n, line in enumerate(lines, 1) if line.strip()]
    if not examples:
        raise UserError(f"{name}: no examples (one per line)")
    return examples


def _txt_line(line: str, where: str, task, width: int) -> Texts:
    texts = get_kind(task.kind).split_line(line)
    if width == 1 and len(texts) > 1:
        raise UserError(f"{where}: a tab splits the line into {len(texts)} texts, but task "
                        f"'{task.name}' takes one text per example{_columns(task)}")
    if width == 2 and len(texts) != 2:
        what = "no tab" if len(texts) == 1 else f"{len(texts) - 1} tabs"
        raise UserError(f"{where}: {what}; task '{task.name}' takes two texts per line "
                        f"({', '.join(task.text_columns)}) separated by one tab")
    return tuple(_text(t, f"{where}") for t in texts)


def _jsonl_row(row: dict, where: str, task) -> Texts:
    keys = get_kind(task.kind).input_keys(task)
    texts = []
    for key in keys:
        if key not in row:
            raise UserError(f"{where}: no '{key}' key (task '{task.name}' reads "
                            f"{', '.join(repr(k) for k in keys)})")
        if not isinstance(row[key], str):
            raise UserError(f"{where}: '{key}' is not a string")
        texts.append(_text(row[key], f"{where}: '{key}'"))
    return tuple(texts)
