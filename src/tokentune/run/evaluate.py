"""`tokentune-evaluate` and `tokentune-predict`: a checkpoint scored on, or run over, a split."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from tokentune.errors import UserError
from tokentune.run.restore import inference_weights, restore
from tokentune.task import get_kind


def evaluate(cfg: DictConfig) -> dict:
    from tokentune.run.results import metrics_to_floats, write_json_atomic

    train_cfg, dm, module, trainer = restore(cfg)
    if not dm.has_labels(cfg.split):
        raise UserError(f"split: '{cfg.split}' has no labels to score; use tokentune-predict")
    module = inference_weights(cfg.ckpt_path, module, trainer)
    if cfg.split in train_cfg.task.validation_splits:
        dm.eval_validation = [cfg.split]
        metrics = trainer.validate(module, datamodule=dm, verbose=False)[0]
    else:
        dm.test_split = cfg.split
        metrics = trainer.test(module, datamodule=dm, verbose=False)[0]
    result = {"ckpt_path": str(cfg.ckpt_path), "split": cfg.split, "metrics": metrics_to_floats(metrics)}
    write_json_atomic(result, Path(cfg.paths.output_dir) / "metrics.json")
    print("  ".join(f"{k}={v:.4f}" for k, v in sorted(result["metrics"].items())), flush=True)
    return result


def write_predictions(trainer, module, dm, split: str, ckpt_path, out_dir: Path) -> tuple[Path, int]:
    """`split` run through the checkpoint (`ckpt_path`; None: the module's weights as they are),
    written in the kind's prediction format (for sentence tasks GLUE's submission TSV, <TASK>.tsv:
    index, prediction), rows in the split's own order."""
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
    train_cfg, dm, module, trainer = restore(cfg)
    get_kind(train_cfg.task.kind).check_prediction_file(train_cfg.task)
    module = inference_weights(cfg.ckpt_path, module, trainer)
    out, n = write_predictions(trainer, module, dm, cfg.split, None, Path(cfg.paths.output_dir))
    print(f"wrote {n} predictions to {out}", flush=True)
    return out
