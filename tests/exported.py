"""Scoring an exported model folder the way a user would: transformers only, no tokentune."""
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tokentune.data.readers import read_split


def dev_metrics(folder, cfg):
    """Accuracy and mean loss of the exported folder on the dev split, through its own tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    examples = read_split(cfg.task, "validation")
    batch = tokenizer([e.text_a for e in examples], padding=True, truncation=True,
                      max_length=cfg.data.max_length, return_tensors="pt")
    labels = torch.tensor([e.label for e in examples])
    with torch.no_grad():
        logits = model(**batch).logits
    return {"val/accuracy": (logits.argmax(-1) == labels).float().mean().item(),
            "val/loss": F.cross_entropy(logits, labels).item()}
