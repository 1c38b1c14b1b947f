"""The baseline: Hugging Face's token-classification recipe (examples/pytorch/token-classification/
run_ner.py: words tokenized with is_split_into_words, each word's label on its first sub-token,
DataCollatorForTokenClassification, Trainer, seqeval), on the rows and settings tokentune gets.

usage: python experiments/ner_conll/hf_trainer.py DATA_DIR MODEL_DIR OUT.json [--epochs 1 --lr 1e-4 ...]
Prints nothing to stdout but the final JSON line; writes it to OUT.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from side_by_side import hf_settings, training_arguments  # noqa: E402

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def read_conll(path: Path) -> list[tuple[list[str], list[str]]]:
    """CoNLL `token<TAB>tag` lines, a blank line between sentences (CRLF as it comes)."""
    sentences, words, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        cols = line.split()
        words.append(cols[0])
        tags.append(cols[-1])
    if words:
        sentences.append((words, tags))
    return sentences


def main() -> None:
    start = time.perf_counter()
    p = argparse.ArgumentParser()
    p.add_argument("data_dir", type=Path)
    p.add_argument("model", type=str)
    p.add_argument("out", type=Path)
    hf_settings(p, epochs=1, lr=1e-4, batch_size=32, max_length=128, warmup_ratio=0.06, weight_decay=0.01, seed=42)
    args = p.parse_args()

    import numpy as np
    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score
    from transformers import (AutoModelForTokenClassification, AutoTokenizer,
                              DataCollatorForTokenClassification, Trainer, set_seed)

    set_seed(args.seed)
    label2id = {label: i for i, label in enumerate(LABELS)}
    tokenizer = AutoTokenizer.from_pretrained(args.model)

    def encode(sentences):
        enc = tokenizer([w for w, _ in sentences], is_split_into_words=True, truncation=True,
                        max_length=args.max_length)
        rows = []
        for i, (_, tags) in enumerate(sentences):
            previous, labels = None, []
            for w in enc.word_ids(i):  # run_ner's label_all_tokens=False
                labels.append(-100 if w is None or w == previous else label2id[tags[w]])
                previous = w
            rows.append({"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                         "token_type_ids": enc["token_type_ids"][i], "labels": labels})
        return rows

    train = encode(read_conll(args.data_dir / "train.txt"))
    dev_sentences = read_conll(args.data_dir / "valid.txt")
    dev = encode(dev_sentences)
    model = AutoModelForTokenClassification.from_pretrained(
        args.model, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id=label2id)

    def metrics(pred):
        logits, labels = pred
        preds = np.argmax(logits, axis=-1)
        true = [[LABELS[t] for t in row if t != -100] for row in labels]
        guess = [[LABELS[p] for p, t in zip(prow, row) if t != -100] for prow, row in zip(preds, labels)]
        return {"precision": precision_score(true, guess), "recall": recall_score(true, guess),
                "f1": f1_score(true, guess), "accuracy": accuracy_score(true, guess)}

    out_dir = args.out.parent / "hf_trainer_output"
    trainer = Trainer(model=model, args=training_arguments(args, out_dir, eval_batch_size=128),
                      train_dataset=train, eval_dataset=dev, data_collator=DataCollatorForTokenClassification(tokenizer), compute_metrics=metrics)
    trainer.train()
    scores = trainer.evaluate()
    result = {"validation": {k.removeprefix("eval_"): v for k, v in scores.items()
                             if k.removeprefix("eval_") in ("f1", "precision", "recall", "accuracy")},
              "steps": trainer.state.global_step, "train_sentences": len(train),
              "validation_sentences": len(dev_sentences),
              "parameters": sum(p.numel() for p in model.parameters()),
              "wall_time_s": time.perf_counter() - start}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
