"""`tokentune-evaluate` and `tokentune-predict`: a checkpoint scored on, or run over, a split."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from tokentune.config import TrainConfig, from_dict
from tokentune.errors import UserError
from tokentune.task import get_kind


def _restore(cfg: DictConfig):
    """The training run's config (from the checkpoint), its data and an untrained module."""
    from tokentune.run.checkpoint_file import read_checkpoint

    # checked before Lightning and the model code are even imported: a wrong file fails in seconds
    train_cfg: TrainConfig = from_dict(read_checkpoint(cfg.ckpt_path)["hyper_parameters"]["cfg"])
    train_cfg.model.compile = None  # one pass over a split does not earn back the compile time
    train_cfg.paths.cache_dir = cfg.paths.cache_dir
    train_cfg.paths.output_dir = cfg.paths.output_dir
    if cfg.data_dir:
        train_cfg.task.data_dir = cfg.data_dir
    split = cfg.get("split")  # None: the caller reads no split (export, raw-text predict)
    if split is not None and split not in get_kind(train_cfg.task.kind).available_splits(train_cfg.task):
        raise UserError(f"split: task '{train_cfg.task.name}' has no '{split}' split "
                        f"(it has {sorted(train_cfg.task.splits)})")

    import pytorch_lightning as pl

    from tokentune.data.datamodule import TaskDataModule
    from tokentune.model.module import TaskModule
    from tokentune.run.trainer import check_accelerator

    check_accelerator(cfg.accelerator, 1, "accelerator")
    dm = TaskDataModule(train_cfg)
    dm.prepare_data()
    module = TaskModule(train_cfg, from_checkpoint=True)
    trainer = pl.Trainer(accelerator=cfg.accelerator, devices=1, logger=False,
                         precision=train_cfg.trainer.precision if cfg.accelerator != "cpu" else "32-true",
                         enable_progress_bar=True, default_root_dir=cfg.paths.output_dir)
    return train_cfg, dm, module, trainer


def load_weights(ckpt_path, dm, module, trainer):
    """The module with the checkpoint's weights, on the trainer's device and precision, eval mode:
    what `trainer.predict(..., ckpt_path=...)` sets up, without its loop."""
    from types import SimpleNamespace

    from tokentune.run.checkpoint_file import read_checkpoint

    module.trainer = SimpleNamespace(datamodule=dm, strategy=trainer.strategy)  # configure_model's
    module.configure_model()
    module.trainer = None
    checkpoint = read_checkpoint(ckpt_path)
    module.on_load_checkpoint(checkpoint)  # PEFT: the trainable weights into the rebuilt base
    module.load_state_dict(checkpoint["state_dict"], strict=True)
    module = trainer.precision_plugin.convert_module(module)
    return module.to(trainer.strategy.root_device).eval()


def evaluate(cfg: DictConfig) -> dict:
    from tokentune.run.results import metrics_to_floats, write_json_atomic

    train_cfg, dm, module, trainer = _restore(cfg)
    if not dm.has_labels(cfg.split):
        raise UserError(f"split: '{cfg.split}' has no labels to score; use tokentune-predict")
    # Lightning reads the checkpoint again to restore it: as data too (tokentune.run.checkpoint_file)
    if cfg.split in train_cfg.task.validation_splits:
        dm.eval_validation = [cfg.split]
        metrics = trainer.validate(module, datamodule=dm, ckpt_path=cfg.ckpt_path, verbose=False,
                                   weights_only=True)[0]
    else:
        dm.test_split = cfg.split
        metrics = trainer.test(module, datamodule=dm, ckpt_path=cfg.ckpt_path, verbose=False,
                               weights_only=True)[0]
    result = {"ckpt_path": str(cfg.ckpt_path), "split": cfg.split, "metrics": metrics_to_floats(metrics)}
    write_json_atomic(result, Path(cfg.paths.output_dir) / "metrics.json")
    print("  ".join(f"{k}={v:.4f}" for k, v in sorted(result["metrics"].items())), flush=True)
    return result


def write_predictions(trainer, module, dm, split: str, ckpt_path, out_dir: Path) -> tuple[Path, int]:
    """`split` run through the checkpoint, written in the kind's prediction format (for sentence
    tasks GLUE's submission TSV, <TASK>.tsv: index, prediction), rows in the split's own order."""
    from tokentune.atomic import write_atomic

    task = dm.cfg.task
    dm.predict_split = split
    preds = [p for batch in trainer.predict(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
             for p in batch.tolist()]
    name, content = get_kind(task.kind).prediction_file(task, dm, split, preds)
    out = out_dir / name
    write_atomic(out, content)
    return out, len(preds)


def predict(cfg: DictConfig) -> Path:
    from tokentune.run.predict_text import predict_text, raw_text_mode

    if raw_text_mode(cfg):  # text=, pair= or input=: JSON lines (tokentune.run.predict_text)
        return predict_text(cfg)
    if cfg.get("split") is None:
        cfg.split = "test"
    train_cfg, dm, module, trainer = _restore(cfg)
    get_kind(train_cfg.task.kind).check_prediction_file(train_cfg.task)
    out, n = write_predictions(trainer, module, dm, cfg.split, cfg.ckpt_path, Path(cfg.paths.output_dir))
    print(f"wrote {n} predictions to {out}", flush=True)
    return out
