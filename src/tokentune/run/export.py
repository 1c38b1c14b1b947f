"""`model/` in a finished run: the best weights as a folder that loads without tokentune.

- full fine-tuning, with any vocabulary (the backbone's own, trimmed or built from the task): a
  transformers folder, i.e. config.json (the task's labels as `id2label`/`label2id`, its
  `problem_type`, the run's vocabulary size), safetensors weights and the run's tokenizer, so that
  `AutoModelForSequenceClassification.from_pretrained(run/model)` (or `AutoModelForCausalLM`) and
  `pipeline(..., model=run/model)` load it;
- LoRA: the same folder with the LoRA deltas merged into the weights, and the adapter alone in
  peft's own format under `model/adapter/` (`PeftModel.from_pretrained(base, run/model/adapter)`).

Prefix tuning and bottleneck adapters have no export yet: their runs keep the checkpoint only.
The folder is written beside and renamed into place, so a run cut while exporting leaves the
previous `model/` or none, never half of one.
"""
from __future__ import annotations

import copy
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import torch

from tokentune.atomic import current_umask
from tokentune.config import TrainConfig
from tokentune.model.packed import transformers_model

log = logging.getLogger(__name__)
EXPORTED = ("full", "lora")


def plain_model(model: torch.nn.Module, cfg: TrainConfig) -> torch.nn.Module:
    """A standalone transformers model with the run's weights and the task's labels in its
    config; `model` itself is left as it is (LoRA is merged in a copy)."""
    if cfg.finetune.method == "lora":
        from tokentune.finetune.lora import merge_lora

        plain = merge_lora(copy.deepcopy(model))
    else:
        plain = copy.deepcopy(transformers_model(model))
    if cfg.task.kind == "classification":
        plain.config.id2label = dict(enumerate(cfg.task.labels))
        plain.config.label2id = {label: i for i, label in enumerate(cfg.task.labels)}
    return plain


def directory_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def export_model(model: torch.nn.Module, tokenizer, cfg: TrainConfig, out_dir: str | Path) -> Optional[Path]:
    """Write `out_dir` (see the module docstring); None, with a log line, for a method that has
    no plain-folder export."""
    out = Path(out_dir)
    if cfg.finetune.method not in EXPORTED:
        log.info("export: finetune=%s has no plain-model export yet; the checkpoint holds the run",
                 cfg.finetune.method)
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        plain_model(model, cfg).save_pretrained(tmp)  # transformers 5 always writes safetensors
        tokenizer.save_pretrained(tmp)
        if cfg.finetune.method == "lora":  # peft's format: adapter weights + config
            # a task-built vocabulary's embeddings trained in place (not as a peft module), so
            # peft saves them only when told
            trained = model.get_input_embeddings().weight.requires_grad
            model.save_pretrained(tmp / "adapter", save_embedding_layers=trained)
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes the folder private
        if out.exists():  # a resumed or repeated run: the new folder replaces the old whole
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out



def export_checkpoint(cfg) -> Path:
    """`tokentune-export ckpt_path=... out=...`: any checkpoint's weights as such a folder, with
    the card when the run's results.json is beside its checkpoints/ folder."""
    from omegaconf import OmegaConf

    from tokentune.errors import UserError
    from tokentune.run.evaluate import _restore, load_weights
    from tokentune.run.model_card import write_model_card

    # _restore checks a split against the task; "validation" is one every task answers to
    restore_cfg = OmegaConf.create({**OmegaConf.to_container(cfg), "split": "validation"})
    train_cfg, dm, module, trainer = _restore(restore_cfg)
    if train_cfg.finetune.method not in EXPORTED:
        raise UserError(f"ckpt_path: finetune={train_cfg.finetune.method} has no plain-model export yet "
                        f"(only {', '.join(EXPORTED)}); the checkpoint itself holds the run")
    module = load_weights(cfg.ckpt_path, dm, module, trainer)
    out = export_model(module.model, dm.tokenizer, train_cfg, Path(cfg.out))
    results = Path(cfg.ckpt_path).resolve().parent.parent / "results.json"
    if results.is_file():
        import json

        write_model_card(train_cfg, json.loads(results.read_text()),
                         {split: len(t) for split, t in dm.texts.items()}, out)
    print(f"exported {cfg.ckpt_path} to {out}", flush=True)
    return out
