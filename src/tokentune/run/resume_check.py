"""A resume (`ckpt_path=<run>/checkpoints/last.ckpt`) checked against the config it is run with,
before anything is written into the run's directory.

The checkpoint holds the config it was trained with (`hyper_parameters.cfg`). Compared key by
dotted key with the composed one, a key is one of three kinds:

- what the checkpoint *is* (the model, its family, the fine-tuning method and its settings, the
  vocabulary, the task): a difference is refused, with one line naming the keys. The weights
  would not fit, or would fit and mean something else;
- where and how the run is watched, not what it computes (`IGNORED`): free to differ;
- everything else changes the optimisation (batch size, learning rate and schedule, epochs and
  steps, precision, devices, validation interval, seed ...): refused unless
  `resume.allow_changes=true`, and then listed in the log and in results.json as
  `resume_changes: {key: [old, new]}`. A key this list does not know falls here, the safe side.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tokentune.config import TrainConfig, from_dict
from tokentune.errors import UserError

IDENTITY = ("model.", "finetune.", "tokenizer.", "task.")
# Within IDENTITY, settings that do not change what the checkpoint is
NOT_IDENTITY = (
    "finetune.lr",  # the method's default rate, which optimizer.lr follows: an optimisation key
)
IGNORED = (
    "paths.",  # where data, caches and the run live: a moved run or data folder resumes
    "task.data_dir",  # the same
    "ckpt_path",  # this resume's own
    "resume.",  # this resume's own choice
    "logger.",  # where the metrics also go (the CSV rows are kept either way, run/resume.py)
    "callbacks.progress_bar", "callbacks.refresh_rate", "callbacks.lr_monitor",  # what is shown
    "callbacks.every_n_train_steps",  # how often last.ckpt is written, not what is trained
    "trainer.log_every_n_steps", "trainer.num_sanity_val_steps",  # what is logged or checked
    # where it runs: the same batches reach the optimizer on a CPU or a GPU, under DDP or FSDP.
    # trainer.devices and num_nodes are not here: data.batch_size is per rank, so they change the
    # global batch (and the position a mid-epoch checkpoint holds counts global batches)
    "trainer.accelerator", "trainer.strategy", "trainer.ddp_timeout_s",
    "model.compile",  # the same weights and computation, compiled or eager
    "data.num_workers", "data.pin_memory",  # how batches are loaded, not which
    "data.max_empty_share",  # a check of the rows read, not what trains on them
    "test", "export",  # what happens once training is over
)


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in patterns)


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict) or not d:
        return {prefix[:-1]: d} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}."))
    return out


def _saved(saved: dict) -> dict:
    """The checkpoint's config with today's defaults for keys an older tokentune did not write."""
    try:
        return asdict(from_dict(saved))
    except Exception:  # noqa: BLE001 - a key since removed or renamed: compare what is there
        return saved


def _show(keys: list[str], old: dict, new: dict, limit: int = 6) -> str:
    def short(v: Any) -> str:
        text = repr(v)
        return text if len(text) <= 40 else text[:37] + "..."

    shown = ", ".join(f"{k} ({short(old.get(k))} → {short(new.get(k))})" for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def resume_changes(ckpt: str, saved: dict, cfg: TrainConfig) -> dict[str, list]:
    """The optimisation keys that differ, as {key: [checkpoint's, now]} (allowed by
    resume.allow_changes); raises UserError for any other difference."""
    old, new = _flat(_saved(saved)), _flat(asdict(cfg))
    # the broadest keys first (model.name before model.config.n_layer)
    differ = sorted((k for k in old.keys() | new.keys()
                     if old.get(k, "<absent>") != new.get(k, "<absent>") and not _matches(k, IGNORED)),
                    key=lambda k: (k.count("."), k))
    identity = [k for k in differ if _matches(k, IDENTITY) and not _matches(k, NOT_IDENTITY)]
    if identity:
        raise UserError(f"ckpt_path: {ckpt} is a checkpoint of another run than this config: "
                        f"{_show(identity, old, new)}; resume it with the model, method, vocabulary "
                        f"and task it was trained with (its run's config.yaml), or start a new run")
    changes = {k: [old.get(k), new.get(k)] for k in differ if k not in identity}
    if changes and not cfg.resume.allow_changes:
        raise UserError(f"ckpt_path: {ckpt} was trained with other settings: "
                        f"{_show(list(changes), old, new)}; resume with the checkpoint's values, or "
                        f"pass resume.allow_changes=true to continue with these")
    return changes
