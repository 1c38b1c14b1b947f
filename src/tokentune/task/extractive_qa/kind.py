"""Extractive question answering (SQuAD v1.1, and v2.0 with unanswerable questions): the answer
is a span of the context, marked by a start and an end token.

Questions come from the original SQuAD JSON, JSON lines or the hub (squad.py); contexts longer
than a window are cut into overlapping windows whose tokens keep their character spans
(windows.py); the head is transformers' *ForQuestionAnswering; per window the device keeps only
the n_best start and end scores and the null score, turned into one answer per question
(postprocess.py) and scored by the official SQuAD exact match and F1 (squad_metrics.py) once per
epoch. A split's predictions are the official `{question id: answer}` JSON; raw-text predict
returns the answer, its character span in the context and its score.
"""
from __future__ import annotations

from tokentune.errors import UserError, check
from tokentune.task.kind import TaskKind

FORMATS = ("squad", "jsonl", "hub")
METRICS = ("exact_match", "f1")


class ExtractiveQA(TaskKind):
    name = "extractive_qa"
    auto_class = "AutoModelForQuestionAnswering"
    peft_task_type = "QUESTION_ANS"
    pipeline_task = "question-answering"  # transformers 5 has no such pipeline: see load_example
    head_names = ("qa_outputs", "classifier")  # transformers' names (ModernBERT's is classifier)
    configures_labels = False  # two logits per token, start and end
    packing_refused = ("a packed row feeds a sentence head one pooled token per sequence; question "
                       "answering scores every token, so its batches are padded (data.packing=false)")
    predicts_validation = True

    def check_task(self, task) -> None:
        check(task.format in FORMATS, "task.format", f"'{task.format}' is not a format for questions {FORMATS}")
        for m in task.metrics:
            check(m in METRICS, "task.metrics", f"'{m}' is not a question-answering metric {METRICS}")
        check(task.doc_stride >= 0, "task.doc_stride", f"must be ≥ 0, got {task.doc_stride}")
        check(task.max_answer_length >= 1, "task.max_answer_length", "must be at least 1 token")
        check(task.n_best >= 1, "task.n_best", "must be at least 1")

    def num_labels(self, task) -> int:
        return 2

    # -- data -------------------------------------------------------------------------------
    def read_splits(self, task):
        from tokentune.task.extractive_qa.squad import read_qa

        if "validation" not in task.splits:
            raise UserError(f"task.splits: task '{task.name}' needs a 'validation' split")
        return {split: read_qa(task, split) for split in task.splits}

    def texts(self, raw):
        # questions and each context once, as separate texts: a vocabulary is built (or trimmed)
        # on the strings the windows tokenize
        return {split: [e.question for e in examples] + list(dict.fromkeys(e.context for e in examples))
                for split, examples in raw.items()}

    def example_texts(self, raw):
        return {split: [f"{e.question} {e.context}" for e in examples] for split, examples in raw.items()}

    def encode_splits(self, raw, tokenizer, cfg, key, cache):
        from tokentune.data.encode import fingerprint
        from tokentune.task.extractive_qa.windows import encode_windows

        tensors = {}
        for split, examples in raw.items():
            rows = [(e.id, e.question, e.context, e.answers) for e in examples]
            tensors[split] = cache.get(
                f"{split}-{fingerprint(key, rows, cfg.task.doc_stride, cfg.task.version_2)}.pt",
                lambda: encode_windows(tokenizer, examples, max_length=cfg.data.max_length,
                                       doc_stride=cfg.task.doc_stride))
        return tensors

    def indices(self, raw):
        return dict(raw)

    def has_labels(self, tensors) -> bool:
        return "start_positions" in tensors

    def data_report(self, tensors) -> dict:
        return {split: {"questions": len(set(t["window_example"].tolist())), "windows": len(t["offsets"]) - 1,
                        "answers_in_no_window": int(t["lost_answers"])} for split, t in tensors.items()}

    # -- model ------------------------------------------------------------------------------
    def configure_head(self, config, task) -> None:
        config.num_labels = 2

    def head(self, family, model=None) -> str:
        return next((name for name in self.head_names if hasattr(model, name)), self.head_names[0])

    def trained_heads(self, family, model) -> tuple[str, ...]:
        return (self.head(family, model),)

    def model_inputs(self, batch):
        return {k: v for k, v in batch.items() if k not in ("context_mask", "row")}

    def build_metrics(self, task):
        import torchmetrics as tm

        from tokentune.task.extractive_qa.qa_metric import SquadMetric

        return tm.MetricCollection({"squad": SquadMetric(task)})

    def bind_metrics(self, metrics, dm, split: str) -> None:
        for metric in metrics.values():
            metric.bind(self.windows(dm, split))

    def windows(self, dm, split: str):
        from tokentune.task.extractive_qa.qa_metric import SplitWindows

        return SplitWindows(dm.indices[split], dm.splits[split].tensors)

    def update_metrics(self, metrics, out, batch) -> None:
        metrics.update(batch["row"], out.start_logits, out.end_logits, batch["context_mask"])

    def batch_predictions(self, task, out, batch):
        """Per window one row: null score, then the n_best start scores, start positions, end
        scores and end positions (postprocess.window_top), as floats."""
        import torch

        from tokentune.task.extractive_qa.postprocess import window_top

        null, *top = window_top(out.start_logits, out.end_logits, batch["context_mask"], task.n_best)
        return torch.cat([null[:, None], *(t.float() for t in top)], dim=1)

    def pipeline_kwargs(self, task) -> str:
        # pipeline()'s own defaults (max_seq_len 384, doc_stride 128, max_answer_len 15) are not
        # the run's: it answers as the run did with the run's settings
        null = ", handle_impossible_answer=True" if task.version_2 else ""
        return f", doc_stride={task.doc_stride}, max_answer_len={task.max_answer_length}{null}"

    def load_example(self, cfg, folder: str) -> list[str]:
        from transformers.pipelines import SUPPORTED_TASKS

        if self.pipeline_task in SUPPORTED_TASKS:
            return super().load_example(cfg, folder)
        # transformers 5 removed pipeline("question-answering"): the Auto classes, windowed as the run was
        return ["from transformers import AutoModelForQuestionAnswering, AutoTokenizer",
                f'model = AutoModelForQuestionAnswering.from_pretrained("{folder}")',
                f'tokenizer = AutoTokenizer.from_pretrained("{folder}")',
                "# windows as the run made them; the answer: the best start + end logit over the "
                "context tokens (tokentune-predict question=... context=... does it all)",
                "inputs = tokenizer(question, context, truncation=\"only_second\", "
                f"max_length={cfg.data.max_length}, stride={cfg.task.doc_stride}, return_overflowing_tokens=True, "
                "return_offsets_mapping=True)"]

    # -- outputs ----------------------------------------------------------------------------
    def prediction_file(self, task, dm, split, predictions):
        """`<task>-<split>-predictions.json`: the official {question id: answer} ("" for no answer),
        which the official evaluate-v1.1.py / evaluate-v2.0.py score unchanged."""
        import json

        answered = self.answers_of(task, dm, split, predictions)
        preds = {dm.indices[split][i].id: a.text for i, a in sorted(answered.items())}
        return f"{task.name}-{split}-predictions.json", json.dumps(preds, ensure_ascii=False, indent=1) + "\n"

    def answers_of(self, task, dm, split, predictions) -> dict:
        n = task.n_best
        cols = [[row[0] for row in predictions]] + [[row[1 + k * n:1 + (k + 1) * n] for row in predictions]
                                                      for k in range(4)]
        return self.windows(dm, split).answers(list(range(len(predictions))), *cols, task=task)

    def input_keys(self, task) -> list[str]:
        return ["question", "context"]

    def predict_text(self, cfg, train_cfg, dm, model, trainer, examples) -> list[dict]:
        """Each question's answer with its character span in the context and its score (the
        window's start probability times its end probability, over the context tokens and the
        null position, as pipeline("question-answering") has it); for v2.0 the null answer
        (answer "", start and end null) when the null score wins by more than task.null_threshold."""
        import math

        import torch
        from torch.utils.data import DataLoader

        from tokentune.data.encode import EncodedSplit
        from tokentune.task.extractive_qa.postprocess import best_spans, choose, window_top
        from tokentune.task.extractive_qa.qa_metric import SplitWindows
        from tokentune.task.extractive_qa.squad import QAExample
        from tokentune.task.extractive_qa.windows import NULL, encode_windows

        task = train_cfg.task
        qs = [QAExample(str(n), q, c, None, f"text {n + 1}") for n, (q, c) in enumerate(examples)]
        tensors = encode_windows(dm.tokenizer, qs, max_length=train_cfg.data.max_length, doc_stride=task.doc_stride)
        loader = DataLoader(EncodedSplit(tensors), batch_size=cfg.batch_size, shuffle=False,
                            collate_fn=dm.collate_fn(train=False))
        # per window only what answering and scoring need, never its logits: the n_best scores and
        # the softmax normalisers, start's plus end's (a span's probability is exp(its score - that))
        device, norms, states = trainer.strategy.root_device, {}, [[] for _ in range(6)]
        with torch.no_grad():
            for batch in loader:
                batch = {k: v.to(device) for k, v in batch.items()}
                with trainer.precision_plugin.predict_step_context():
                    out = model(batch)
                keep = batch["context_mask"].bool()
                keep[:, NULL] = True
                norm = sum(logits.float().masked_fill(~keep, float("-inf")).logsumexp(-1)
                           for logits in (out.start_logits, out.end_logits))
                norms.update(zip(batch["row"].tolist(), norm.tolist()))
                top = window_top(out.start_logits, out.end_logits, batch["context_mask"], task.n_best)
                for state, value in zip(states, (batch["row"], *top)):
                    state.extend(value.tolist())
        windows = SplitWindows(qs, tensors)
        best, nulls = best_spans(len(qs), windows.window_example, *states, windows.char_spans,
                                 max_answer_length=task.max_answer_length)
        null_window = {}  # each question's window with the lowest null score: where its null answer is
        for row, null in zip(states[0], states[1]):
            e = windows.window_example[row]
            if e not in null_window or null < null_window[e][1]:
                null_window[e] = (row, null)
        rows = []
        chosen = choose(qs, best, nulls, version_2=task.version_2, null_threshold=task.null_threshold)
        for n, ((question, context), a) in enumerate(zip(examples, chosen)):
            w, score = null_window[n] if a.start is None else (a.span.window, a.span.score)
            rows.append({"question": question, "context": context, "answer": a.text, "start": a.start,
                         "end": a.end, "score": math.exp(score - norms[w])})
        return rows

    def card_task(self, task) -> str:
        version = "SQuAD v2.0 layout, unanswerable questions allowed" if task.version_2 else "SQuAD v1.1 layout"
        return (f"{task.name} ({self.name}, {version}; doc_stride {task.doc_stride}, "
                f"max_answer_length {task.max_answer_length})")
