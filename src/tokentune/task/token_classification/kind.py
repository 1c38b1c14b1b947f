"""Token classification (named entities, part of speech, chunks): a tag per word.

Sentences come from CoNLL column files, tagged JSON lines or the hub (conll.py), their tags in
the task's scheme (tags.py); each word's tag lands on its first sub-token, found from character
offsets for any fast tokenizer (align.py); the head is transformers' *ForTokenClassification;
scores are entity-level, as conlleval and seqeval count them (metrics.py). A split's predictions
are a CoNLL file of predicted tags; raw-text predict returns the entities found, with their
character spans.
"""
from __future__ import annotations

import logging
from pathlib import Path

from tokentune.errors import UserError, check
from tokentune.task.kind import TaskKind

log = logging.getLogger(__name__)
FORMATS = ("conll", "jsonl", "hub")
METRICS = ("f1", "precision", "recall", "accuracy")
IGNORE = -100  # torch's cross-entropy ignore_index: special tokens and later sub-tokens


class TokenClassification(TaskKind):
    name = "token_classification"
    auto_class = "AutoModelForTokenClassification"
    peft_task_type = "TOKEN_CLS"
    pipeline_task = "token-classification"
    # transformers names it classifier (BERT, GPT-2, RoBERTa ...) or score (Llama, Qwen2), the two
    # names peft's TOKEN_CLS trains in full too
    head_names = ("classifier", "score")
    packing_refused = ("a packed row feeds a sentence head one pooled token per sequence; token "
                       "classification labels every token, so its batches are padded (data.packing=false)")

    def check_task(self, task) -> None:
        from tokentune.task.token_classification.tags import SCHEMES

        check(task.format in FORMATS, "task.format",
              f"'{task.format}' is not a format for tagged sentences {FORMATS}")
        check(task.tag_scheme in SCHEMES, "task.tag_scheme", f"'{task.tag_scheme}' is not one of {SCHEMES}")
        check(len(task.text_columns) == 1, "task.text_columns",
              "a tagging task reads one list of tokens (jsonl/hub: its key)")
        for m in task.metrics:
            check(m in METRICS, "task.metrics", f"'{m}' is not a token-classification metric {METRICS}")
        if task.labels is not None:  # else collected from the train split
            check(len(set(task.labels)) == len(task.labels), "task.labels", "labels must be unique")
            check("O" in task.labels, "task.labels", "the label list needs the outside tag 'O'")

    def num_labels(self, task) -> int:
        return len(task.labels)

    # -- data -------------------------------------------------------------------------------
    def read_splits(self, task):
        """Every split's sentences, their tags checked against the scheme and the label list.
        When the task gives no label list, it is collected from the train split and stored in
        task.labels, so that the checkpoint, the export and every later read carry it."""
        from tokentune.task.token_classification.tags import (check_labels, check_scheme,
                                                               collect_labels, count_violations)

        if task.validation_splits[0] not in task.splits:
            raise UserError(f"task.splits: task '{task.name}' needs a 'validation' split")
        raw, where = {}, {}
        for split in task.splits:
            raw[split], where[split] = _read(task, split)
        if task.labels is None:
            task.labels = collect_labels(raw["train"])
        for split, sentences in raw.items():
            if sentences[0].tags is None:
                continue
            check_scheme(sentences, task.tag_scheme, where[split])
            check_labels(sentences, task.labels, where[split])
            if task.tag_scheme == "IOB2":
                bad = count_violations([s.tags for s in sentences], task.tag_scheme)
                if bad:  # conlleval and seqeval read such an I-X as the start of an entity
                    log.warning("%s: %d tags that IOB2 forbids (I-X after O or another type); they are "
                                "scored as the start of an entity, as conlleval does", where[split], bad)
        return raw

    def texts(self, raw):
        return {split: [" ".join(s.tokens) for s in sentences] for split, sentences in raw.items()}

    def encode_splits(self, raw, tokenizer, cfg, key, cache):
        from tokentune.data.encode import fingerprint

        label2id = {label: i for i, label in enumerate(cfg.task.labels)}
        tensors = {}
        for split, sentences in raw.items():
            rows = [(s.tokens, s.tags) for s in sentences]
            tensors[split] = cache.get(f"{split}-{fingerprint(key, rows)}.pt", lambda: _encode(
                tokenizer, sentences, label2id, cfg))
            cut = int(tensors[split]["truncated_words"])
            if cut:
                log.warning("%s: %d words cut off by data.max_length=%d: their tags are neither learned "
                            "nor scored (predicted as O); raise data.max_length", split, cut,
                            cfg.data.max_length)
        return tensors

    def indices(self, raw):
        return {split: [s.tokens for s in sentences] for split, sentences in raw.items()}

    def data_report(self, tensors) -> dict:
        return {split: {"sentences": len(t["offsets"]) - 1, "truncated_words": int(t["truncated_words"]),
                        "unaligned_words": int(t["unaligned_words"])} for split, t in tensors.items()}

    # -- model ------------------------------------------------------------------------------
    def configure_head(self, config, task) -> None:
        config.num_labels = len(task.labels)
        self.label_config(config, task)

    def head(self, family, model=None) -> str:
        return next((name for name in self.head_names if hasattr(model, name)), self.head_names[0])

    def trained_heads(self, family, model) -> tuple[str, ...]:
        return (self.head(family, model),)

    def model_inputs(self, batch):
        return {k: v for k, v in batch.items() if k != "word_starts"}

    def training_loss(self, loss, batch, module):
        # Under DDP each rank's loss is a mean over its own labelled tokens and the gradients are
        # averaged over ranks: ranks with fewer tokens would weigh each more. Rescaled by the
        # global count (one all-reduce of a scalar, no host sync), the step is the one-process step
        # over the global batch (HF Trainer's average_tokens_across_devices)
        world = module.trainer.world_size
        if world == 1:
            return loss
        local = (batch["labels"] != IGNORE).sum()
        return loss * local * world / module.all_gather(local).sum()

    def loss_weight(self, batch):
        # the loss is a mean over labelled tokens: weighed by their count, the epoch's loss is the
        # split's per-token mean, whatever the batches (a tensor: no host sync)
        return (batch["labels"] != IGNORE).sum()

    def build_metrics(self, task):
        import torchmetrics as tm

        from tokentune.task.token_classification.entity_metric import EntityMetric

        return tm.MetricCollection({"entities": EntityMetric(task.labels, task.tag_scheme, task.metrics)})

    def update_metrics(self, metrics, out, batch) -> None:
        # scored per word, on its first sub-token: with label_all_subtokens the others carry labels too
        words = batch["labels"].masked_fill(batch["word_starts"] == 0, IGNORE)
        metrics.update(self.predictions(out.logits), words)

    def predictions(self, logits):
        return logits.argmax(-1)

    def pipeline_kwargs(self, task) -> str:
        # "first" reads a word's tag off its first sub-token, where it was trained; "simple" groups
        # every sub-token's own tag, which only training on all of them makes meaningful
        return f', aggregation_strategy="{"simple" if task.label_all_subtokens else "first"}"'

    def label_config(self, config, task) -> None:
        config.id2label = dict(enumerate(task.labels))
        config.label2id = {label: i for i, label in enumerate(task.labels)}

    # -- outputs ----------------------------------------------------------------------------
    def prediction_file(self, task, dm, split, predictions):
        """`<task>-<split>.conll`: each word and its predicted tag, a blank line between sentences
        (words cut off by max_length are tagged O)."""
        from tokentune.task.token_classification.align import first_subtokens

        data = dm.splits[split]
        word_ids, offsets = data.tensors["word_ids"].tolist(), data.offsets.tolist()
        lines = []
        for i, (words, row) in enumerate(zip(dm.indices[split], predictions)):
            ids = [w if w >= 0 else None for w in word_ids[offsets[i]:offsets[i + 1]]]
            for word, pos in zip(words, first_subtokens(ids, len(words))):
                lines.append(f"{word}\t{task.labels[row[pos]] if pos is not None else 'O'}")
            lines.append("")
        return f"{task.name}-{split}.conll", "\n".join(lines) + "\n"

    def input_keys(self, task) -> list[str]:
        return ["text"]

    def split_line(self, line: str) -> list[str]:
        return [line]  # a sentence, split into words at whitespace

    def predict_text(self, cfg, train_cfg, dm, model, trainer, examples) -> list[dict]:
        """Each text's entities: type, the text they cover, its character span, and a score (the
        mean over the entity's words of the probability of their tag, as pipeline()'s "simple"
        aggregation has it)."""
        import torch

        from tokentune.data.batching import collate
        from tokentune.task.token_classification.align import first_subtokens, split_words, word_ids
        from tokentune.task.token_classification.entity_metric import entities

        task, rows = train_cfg.task, []
        device = trainer.strategy.root_device
        for start in range(0, len(examples), cfg.batch_size):
            chunk = [t[0] for t in examples[start:start + cfg.batch_size]]
            words = [split_words(text) for text in chunk]
            encoded = [word_ids(dm.tokenizer, [w for w, _, _ in ws], max_length=train_cfg.data.max_length)
                       for ws in words]
            features = [{"input_ids": torch.tensor(ids),
                         **({"token_type_ids": torch.tensor(types)} if types is not None else {})}
                        for ids, types, _, _ in encoded]
            batch = collate(features, pad_id=dm.tokenizer.pad_token_id)
            with torch.no_grad(), trainer.precision_plugin.predict_step_context():
                probs = model({k: v.to(device) for k, v in batch.items()}).logits.float().softmax(-1).cpu()
            for text, ws, (_, _, wids, _), p in zip(chunk, words, encoded, probs):
                first = first_subtokens(wids, len(ws))
                tags = [task.labels[int(p[pos].argmax())] if pos is not None else "O" for pos in first]
                scores = [float(p[pos].max()) if pos is not None else 0.0 for pos in first]
                rows.append({"text": text, "entities": [
                    {"entity": type_, "text": text[ws[a][1]:ws[b][2]], "start": ws[a][1], "end": ws[b][2],
                     "score": sum(scores[a:b + 1]) / (b + 1 - a)}
                    for type_, a, b in entities(tags, task.tag_scheme)]})
        return rows

    def card_task(self, task) -> str:
        return f"{task.name} ({self.name}, {task.tag_scheme} tags: {', '.join(task.labels)})"


def _read(task, split: str):
    """(sentences, where) of one split: local files first, the hub as the fallback."""
    from tokentune.data.readers import refuse_folder, split_path
    from tokentune.task.token_classification.conll import read_conll, read_tagged_jsonl

    path = split_path(task, split)
    if task.format != "hub" and (path.is_file() or not task.hub_dataset):
        refuse_folder(path, split)
        if task.format == "conll":
            return read_conll(path, tag_column=task.tag_column, labelled=_scored(task, split)
                              or _conll_labelled(path)), path
        return read_tagged_jsonl(path, tokens_key=task.text_columns[0], tags_key=task.label_column,
                                 labelled=_scored(task, split) or _jsonl_labelled(path, task)), path
    return _read_hub(task, split, path)


def _scored(task, split: str) -> bool:
    """Train and validation splits must be tagged; another split may be (it is when its first
    token line has a tag)."""
    return split == "train" or split in task.validation_splits


def _conll_labelled(path: Path) -> bool:
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        first = next((line for line in f if line.strip() and not line.startswith("-DOCSTART-")), "")
    return len(first.split()) > 1


def _jsonl_labelled(path: Path, task) -> bool:
    import json

    with path.open(encoding="utf-8-sig", errors="replace") as f:
        first = next((line for line in f if line.strip()), "{}")
    try:
        return task.label_column in json.loads(first)
    except json.JSONDecodeError:
        return True  # read as labelled: the reader names the line


def _read_hub(task, split: str, missing: Path):
    from tokentune.task.token_classification.conll import TaggedSentence

    from tokentune.data.readers import hub_split

    ds, where = hub_split(task, split, missing)
    tags_key, tokens_key = task.label_column, task.text_columns[0]
    feature = ds.features.get(tags_key)
    names = getattr(getattr(feature, "feature", None), "names", None)  # a Sequence(ClassLabel)
    sentences = [TaggedSentence(tuple(row[tokens_key]),
                                tuple(names[t] if names else str(t) for t in row[tags_key])
                                if tags_key in row else None, n + 1)
                 for n, row in enumerate(ds) if row[tokens_key]]
    return sentences, where


def _encode(tokenizer, sentences, label2id, cfg) -> dict:
    """A split as flat tensors: token ids, token labels (IGNORE where none), each token's word
    (-1: none) and whether it starts one, plus the counts of words cut off or left unaligned."""
    import torch

    from tokentune.data.encode import flatten
    from tokentune.task.token_classification.align import encode_sentences

    enc = encode_sentences(tokenizer, sentences, label2id, max_length=cfg.data.max_length,
                           label_all_subtokens=cfg.task.label_all_subtokens)
    word_ids = [[-1 if w is None else w for w in ws] for ws in enc["word_ids"]]
    starts = [[int(w >= 0 and (i == 0 or ws[i - 1] != w)) for i, w in enumerate(ws)] for ws in word_ids]
    flat, offsets = flatten(enc["input_ids"], torch.int32)
    out = {"input_ids": flat, "offsets": offsets, "word_ids": flatten(word_ids, torch.int32)[0],
           "word_starts": flatten(starts, torch.int8)[0],
           "truncated_words": torch.tensor(enc["truncated_words"]),
           "unaligned_words": torch.tensor(enc["unaligned_words"])}
    if "token_type_ids" in enc:
        out["token_type_ids"] = flatten(enc["token_type_ids"], torch.int8)[0]
    if "labels" in enc:
        out["token_labels"] = flatten(enc["labels"], torch.long)[0]
    return out
