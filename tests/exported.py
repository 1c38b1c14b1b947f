"""Loading and scoring an exported model folder the way a user would: transformers and peft only,
no tokentune (except `tokentune.load_model`, the documented loader of bottleneck adapters)."""
import json

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from tokentune.data.readers import read_split


def peft_base(folder):
    """The frozen base a PEFT export goes on, built as a user would with transformers alone: the
    run's base model (a hub id or a folder), or here for a tiny random-init one the model the run
    drew (same config and seed); resized to the run's vocabulary, with its padding token."""
    manifest = json.loads((folder / "tokentune.json").read_text())
    run = manifest["run_config"]
    if run["model"]["pretrained"]:
        base = AutoModelForSequenceClassification.from_pretrained(run["model"]["pretrained"],
                                                                  num_labels=len(run["task"]["labels"]))
    else:
        config = AutoConfig.for_model(run["model"]["family"], **run["model"]["config"])
        config.num_labels = len(run["task"]["labels"])
        torch.manual_seed(run["seed"])
        base = AutoModelForSequenceClassification.from_config(config)
    base.resize_token_embeddings(manifest["vocab_size"], mean_resizing=False)
    base.config.pad_token_id = AutoTokenizer.from_pretrained(folder).pad_token_id
    return base


def load_standard_way(folder):
    """What README's "Use the model elsewhere" shows for the folder's method."""
    method = json.loads((folder / "tokentune.json").read_text())["method"]
    if method in ("full", "lora", "ia3"):
        return AutoModelForSequenceClassification.from_pretrained(folder).eval()
    if method == "prefix":
        from peft import PeftModel

        return PeftModel.from_pretrained(peft_base(folder), folder).eval()
    import tokentune

    return tokentune.load_model(folder)


def dev_logits(model, folder, cfg):
    """The model's logits on the dev split, through the folder's own tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    examples = read_split(cfg.task, "validation")
    batch = tokenizer([e.text_a for e in examples], padding=True, truncation=True,
                      max_length=cfg.data.max_length, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits, torch.tensor([e.label for e in examples])


def dev_metrics(folder, cfg, model=None):
    """Accuracy and mean loss on the dev split of the folder loaded the standard way."""
    logits, labels = dev_logits(model or load_standard_way(folder), folder, cfg)
    return {"val/accuracy": (logits.argmax(-1) == labels).float().mean().item(),
            "val/loss": F.cross_entropy(logits, labels).item()}


def checkpoint_model(ckpt_path, cache_dir, out_dir):
    """The run's module with the checkpoint's weights, as tokentune-evaluate rebuilds it."""
    from omegaconf import OmegaConf

    from tokentune.run.restore import load_weights, restore

    cfg = OmegaConf.create({"ckpt_path": str(ckpt_path), "data_dir": None, "accelerator": "cpu",
                            "paths": {"cache_dir": str(cache_dir), "output_dir": str(out_dir)}})
    _, _, module, trainer = restore(cfg)
    return load_weights(ckpt_path, module, trainer)
