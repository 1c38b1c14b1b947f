"""`model/` in a finished run: the best weights as a folder that loads outside the run.

What the folder holds is the method's (its `write_export`, tokentune.finetune.method):

- full fine-tuning, with any vocabulary (the backbone's own, trimmed or built from the task): a
  transformers folder, i.e. config.json (the task's labels as `id2label`/`label2id`, its
  `problem_type`, the run's vocabulary size), safetensors weights and the run's tokenizer, so that
  the task kind's Auto class (`AutoModelForSequenceClassification.from_pretrained(run/model)`,
  `AutoModelForCausalLM`, ...) and `pipeline(..., model=run/model)` load it;
- LoRA: the same folder with the LoRA deltas merged into the weights, and the adapter alone in
  peft's own format under `model/adapter/` (`PeftModel.from_pretrained(base, run/model/adapter)`);
- prefix tuning: peft's own format (`PeftModel.from_pretrained(base, run/model)`);
- bottleneck adapter (peft has none): `bottleneck_adapter.safetensors`, the trained weights under
  the names they have in the adapted model, which `load_model` rebuilds.

Every folder also holds the run's tokenizer and `tokentune.json` (the run's config and the
vocabulary's size and special-token ids), from which `load_model(folder)` rebuilds any of them.
The PEFT formats hold what the run trained (adapter or prefix, task head) plus the input
embeddings whenever the vocabulary is not the backbone's own (built, extended or trimmed): the
hub's base has other rows.

The folder is written beside and renamed into place, so a run cut while exporting leaves the
previous `model/` or none, never half of one. Only an earlier export (a folder with
`tokentune.json`) is ever replaced: any other folder that is not empty is refused, before
anything is written (`check_target`).
"""
from __future__ import annotations

import copy
import json
import logging
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from tokentune.atomic import current_umask, fsync_tree, json_text, os_error, write_error
from tokentune.config import TrainConfig
from tokentune.errors import UserError
from tokentune.model.packed import transformers_model

log = logging.getLogger(__name__)
MANIFEST = "tokentune.json"
SPECIAL_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id")


def plain_model(model: torch.nn.Module, cfg: TrainConfig) -> torch.nn.Module:
    """A standalone transformers model with the run's weights and the task's labels in its
    config (the method's weights merged, in a copy); `model` itself is left as it is."""
    from tokentune.finetune import get_method

    plain = get_method(cfg.finetune.method).merged(copy.deepcopy(model))
    if plain is None:
        raise UserError(f"finetune={cfg.finetune.method}: its weights do not fold into the base model's")
    _label(plain.config, cfg)
    return plain


def _label(config, cfg: TrainConfig) -> None:
    from tokentune.task import get_kind

    get_kind(cfg.task.kind).label_config(config, cfg.task)


def directory_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _own_vocabulary(cfg: TrainConfig) -> bool:
    return cfg.tokenizer.kind == "pretrained"


def _manifest(model: torch.nn.Module, cfg: TrainConfig) -> dict:
    config = transformers_model(model).config
    return {"method": cfg.finetune.method, "task_kind": cfg.task.kind,
            "vocab_size": model.get_input_embeddings().num_embeddings,
            "special_token_ids": {k: getattr(config, k, None) for k in SPECIAL_IDS},
            "run_config": asdict(cfg)}


def _write(model: torch.nn.Module, tokenizer, cfg: TrainConfig, folder: Path) -> None:
    from tokentune.finetune import get_method
    from tokentune.finetune.method import Export

    from transformers.utils import logging as hf_logging

    export = Export(plain=lambda: plain_model(model, cfg), own_vocabulary=_own_vocabulary(cfg))
    # transformers draws a "Writing model shards" bar for a one-shard folder written in a blink;
    # the run's own progress bar and its closing line are what a user watches
    hf_logging.disable_progress_bar()
    get_method(cfg.finetune.method).write_export(model, folder, export)
    tokenizer.save_pretrained(folder)
    (folder / MANIFEST).write_text(json_text(_manifest(model, cfg), indent=1, default=str) + "\n")


def is_export(folder: Path) -> bool:
    """A folder tokentune exported (it holds tokentune.json)."""
    return (folder / MANIFEST).is_file()


def check_target(out: str | Path, overwrite: bool, name: str = "out") -> None:
    """Refuse (UserError, one line) to export into `out` unless it is absent, an empty folder or,
    with `overwrite`, an earlier export: nothing tokentune did not write is ever replaced."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{name}={out} is a file, not a folder; choose another folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not is_export(out):
        if overwrite:
            raise UserError(f"{name}={out} is not empty and is not a tokentune export (it has no "
                            f"{MANIFEST}); choose another folder (overwrite=true replaces only an "
                            f"earlier export)")
        raise UserError(f"{name}={out} is not empty; choose another folder or pass overwrite=true "
                        f"(which replaces only an earlier export, a folder with {MANIFEST})")
    if not overwrite:
        raise UserError(f"{name}={out} is not empty; choose another folder or pass overwrite=true "
                        f"(it holds an earlier export, which would be replaced)")


def export_model(model: torch.nn.Module, tokenizer, cfg: TrainConfig, out_dir: str | Path,
                 overwrite: bool = True, name: str = "out") -> Path:
    """Write `out_dir` (see the module docstring), replacing an earlier export whole when
    `overwrite`; any other folder that is not empty is refused (`check_target`)."""
    out = Path(out_dir)
    check_target(out, overwrite, name)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    except OSError as err:
        raise write_error(out, err) from err
    try:
        _write(model, tokenizer, cfg, tmp)
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes the folder private
        fsync_tree(tmp)  # every file on the disk before the folder's name points at them
        if out.exists():  # an earlier export (check_target) or an empty folder: replaced whole
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        refused = os_error(err)  # a full disk, a folder made read-only meanwhile
        if refused is not None:
            raise write_error(out, refused) from err
        raise
    return out


def load_model(folder: str | Path) -> torch.nn.Module:
    """The model an export holds, in eval mode, whatever the method: a transformers folder (full,
    LoRA) through the kind's Auto class; else rebuilt as the run built it (base model, the
    vocabulary's size, the method's modules) with the method's exported weights loaded.
    Tokenize with `AutoTokenizer.from_pretrained(folder)`."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise UserError(f"{folder}: no {MANIFEST}; not a model folder exported by tokentune")
    manifest = json.loads((folder / MANIFEST).read_text())
    import transformers

    from tokentune.finetune import get_method
    from tokentune.task import get_kind

    method = get_method(manifest["method"])
    if method.transformers_folder:
        auto = getattr(transformers, get_kind(manifest["task_kind"]).auto_class)
        return auto.from_pretrained(folder).eval()
    return method.load_export(folder, lambda: _rebuild(manifest))


def _rebuild(manifest: dict) -> torch.nn.Module:
    """The run's model as `apply` built it, untrained, from an export's manifest."""
    from tokentune.config import from_dict
    from tokentune.finetune.apply import apply
    from tokentune.model.backbone import load_backbone
    from tokentune.model.tokenizer import load_base_tokenizer

    cfg = from_dict(manifest["run_config"])
    base = load_backbone(cfg.model, cfg.task, pad_token_id=load_base_tokenizer(cfg.model).pad_token_id,
                         seed=cfg.seed, filled=True)  # the export's weights go in next
    if base.get_input_embeddings().num_embeddings != manifest["vocab_size"]:
        base.resize_token_embeddings(manifest["vocab_size"], mean_resizing=False)  # rows come from the file
    for name, value in manifest["special_token_ids"].items():
        setattr(base.config, name, value)
    _label(base.config, cfg)
    return apply(cfg.finetune, base, family=cfg.model.family, task_kind=cfg.task.kind,
                 max_length=cfg.data.max_length)


def export_checkpoint(cfg) -> Path:
    """`tokentune-export ckpt_path=... out=...`: any checkpoint's weights as such a folder, with
    the card when the run's results.json is beside its checkpoints/ folder."""
    from tokentune.run.model_card import write_model_card
    from tokentune.run.restore import load_weights, restore
    from tokentune.run.results import RunResults

    overwrite = bool(cfg.get("overwrite", False))
    check_target(cfg.out, overwrite)  # before the model is built: a refusal takes a second
    train_cfg, dm, module, trainer = restore(cfg)
    module = load_weights(cfg.ckpt_path, module, trainer)
    out = export_model(module.model, dm.tokenizer, train_cfg, Path(cfg.out), overwrite=overwrite)
    results = Path(cfg.ckpt_path).resolve().parent.parent / "results.json"
    if results.is_file():
        try:
            run = RunResults.load(results)
        except (ValueError, UnicodeDecodeError) as err:  # NotRunResults, or not JSON (cut short)
            log.warning("%s: %s; the export has no model card", results, err)
        else:
            write_model_card(train_cfg, run, {split: len(t) for split, t in dm.texts.items()}, out)
    print(f"exported {cfg.ckpt_path} to {out}", flush=True)
    return out
