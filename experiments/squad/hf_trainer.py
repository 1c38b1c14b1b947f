"""The baseline: Hugging Face's question-answering recipe (examples/pytorch/question-answering/
run_qa.py with utils_qa.py: prepare_train_features / prepare_validation_features with stride and
offsets, DataCollatorWithPadding (its pad_to_max_length=False), Trainer, postprocess_qa_predictions
with n_best_size 20 and max_answer_length 30), on the rows and settings tokentune gets. The
answers are scored by the official evaluate-v1.1.py / evaluate-v2.0.py logic
(tests/task/extractive_qa/official.py: `evaluate`'s squad metrics are that code, and the package is
not installed here). After training on the v1.1 train file the same model answers the v1.1 dev
file and the v2.0 dev file (null answer where the null score beats the best span by more than
--null-threshold, run_qa's null_score_diff_threshold).

With --score-only the model folder (e.g. tokentune's export of its run) answers both dev files
untrained: the recipe's post-processing and scoring on another side's model.

usage: python experiments/squad/hf_trainer.py TRAIN.json DEV.json DEV_V2.json MODEL_DIR OUT.json [--epochs 2 ...] [--score-only]
Prints nothing to stdout but the final JSON line; writes it to OUT.json.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1] / "tests" / "task" / "extractive_qa"))
from side_by_side import hf_settings, training_arguments  # noqa: E402

MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


def read_squad(path: Path) -> tuple[list, list[dict]]:
    """(the file's data list, its questions as run_qa's columns: id, question, context, answers)."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    rows = [{"id": qa["id"], "question": qa["question"].lstrip(), "context": p["context"],
             "answers": {"text": [a["text"] for a in qa["answers"]],
                         "answer_start": [a["answer_start"] for a in qa["answers"]]}}
            for article in data for p in article["paragraphs"] for qa in p["qas"]]
    return data, rows


def tokenize(tokenizer, rows, args):
    return tokenizer([r["question"] for r in rows], [r["context"] for r in rows], truncation="only_second",
                     max_length=args.max_length, stride=args.doc_stride, return_overflowing_tokens=True,
                     return_offsets_mapping=True)


def prepare_train_features(tokenizer, rows, args) -> list[dict]:
    """run_qa's: each window labelled with the answer's tokens, or [CLS] where it is not inside."""
    enc, features = tokenize(tokenizer, rows, args), []
    for i, offsets in enumerate(enc["offset_mapping"]):
        input_ids = enc["input_ids"][i]
        cls_index = input_ids.index(tokenizer.cls_token_id)
        sequence_ids = enc.sequence_ids(i)
        answers = rows[enc["overflow_to_sample_mapping"][i]]["answers"]
        start_position = end_position = cls_index
        if answers["answer_start"]:
            start_char = answers["answer_start"][0]
            end_char = start_char + len(answers["text"][0])
            token_start = sequence_ids.index(1)
            token_end = len(input_ids) - 1 - sequence_ids[::-1].index(1)
            if offsets[token_start][0] <= start_char and offsets[token_end][1] >= end_char:
                while token_start < len(offsets) and offsets[token_start][0] <= start_char:
                    token_start += 1
                start_position = token_start - 1
                while offsets[token_end][1] >= end_char:
                    token_end -= 1
                end_position = token_end + 1
        features.append({**{k: enc[k][i] for k in MODEL_INPUTS}, "start_positions": start_position,
                         "end_positions": end_position})
    return features


def prepare_validation_features(tokenizer, rows, args) -> tuple[list[dict], list[dict]]:
    """run_qa's: (the model's inputs, per window its question id and its offsets, None outside the context)."""
    enc = tokenize(tokenizer, rows, args)
    inputs, meta = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        sequence_ids = enc.sequence_ids(i)
        inputs.append({k: enc[k][i] for k in MODEL_INPUTS})
        meta.append({"example_id": rows[enc["overflow_to_sample_mapping"][i]]["id"],
                     "offset_mapping": [o if sequence_ids[k] == 1 else None for k, o in enumerate(offsets)]})
    return inputs, meta


def postprocess_qa_predictions(rows, meta, start_logits, end_logits, *, version_2: bool, n_best_size: int = 20,
                               max_answer_length: int = 30, null_score_diff_threshold: float = 0.0) -> dict:
    """utils_qa.postprocess_qa_predictions: per question the best start + end logit pair over its
    windows' n_best starts and ends inside the context; with version_2 the null answer where the
    lowest null score beats it by more than the threshold."""
    import numpy as np

    features_per_example = collections.defaultdict(list)
    for i, m in enumerate(meta):
        features_per_example[m["example_id"]].append(i)
    predictions = {}
    for row in rows:
        min_null_score, prelim = None, []
        for i in features_per_example[row["id"]]:
            starts, ends, offsets = start_logits[i], end_logits[i], meta[i]["offset_mapping"]
            null_score = starts[0] + ends[0]
            if min_null_score is None or min_null_score > null_score:
                min_null_score = null_score
            for s in np.argsort(starts)[-1:-n_best_size - 1:-1].tolist():
                for e in np.argsort(ends)[-1:-n_best_size - 1:-1].tolist():
                    if (s >= len(offsets) or e >= len(offsets) or offsets[s] is None or offsets[e] is None
                            or e < s or e - s + 1 > max_answer_length):
                        continue
                    prelim.append((starts[s] + ends[e], offsets[s][0], offsets[e][1]))
        best = max(prelim, default=None)
        text = row["context"][best[1]:best[2]] if best else ""
        if version_2 and (best is None or min_null_score - best[0] > null_score_diff_threshold):
            text = ""
        predictions[row["id"]] = text
    return predictions


def main() -> None:
    start = time.perf_counter()
    p = argparse.ArgumentParser()
    for name in ("train", "dev", "dev_v2"):
        p.add_argument(name, type=Path)
    p.add_argument("model", type=str)
    p.add_argument("out", type=Path)
    hf_settings(p, epochs=2, lr=1e-4, batch_size=16, max_length=256, warmup_ratio=0.1, weight_decay=0.01, seed=42)
    p.add_argument("--doc-stride", type=int, default=64)
    p.add_argument("--null-threshold", type=float, default=0.0)
    p.add_argument("--score-only", action="store_true")
    args = p.parse_args()

    import official
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding, Trainer, set_seed

    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    _, train_rows = read_squad(args.train)
    train = prepare_train_features(tokenizer, train_rows, args)
    model = AutoModelForQuestionAnswering.from_pretrained(args.model)
    trainer = Trainer(model=model, args=training_arguments(args, args.out.parent / "hf_trainer_output", eval_batch_size=64),
                      train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer))
    if not args.score_only:
        trainer.train()

    result = {"steps": trainer.state.global_step, "train_questions": len(train_rows), "train_windows": len(train),
              "parameters": sum(p.numel() for p in model.parameters())}
    for name, path, version_2 in (("validation", args.dev, False), ("validation_v2", args.dev_v2, True)):
        data, rows = read_squad(path)
        inputs, meta = prepare_validation_features(tokenizer, rows, args)
        start_logits, end_logits = trainer.predict(inputs).predictions  # padded with -100 past each window
        preds = postprocess_qa_predictions(rows, meta, start_logits, end_logits, version_2=version_2,
                                           null_score_diff_threshold=args.null_threshold)
        if version_2:
            scores = official.evaluate_v2(data, preds)
            scores = {"exact_match" if k == "exact" else k: v for k, v in scores.items() if not k.endswith("total")}
        else:
            scores = official.evaluate_v1(data, preds)
        result[name] = scores
        result[f"{name}_windows"] = len(inputs)
    result["wall_time_s"] = time.perf_counter() - start
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
