"""A finished run rebuilt from its checkpoint, for the commands that read one (tokentune-evaluate,
tokentune-predict, tokentune-export): the run's config, its data, the module and a one-device
trainer."""
from __future__ import annotations

import warnings

from omegaconf import DictConfig

from tokentune.config import TrainConfig, from_dict
from tokentune.errors import UserError
from tokentune.task import get_kind

# Evaluate and predict take a checkpoint's weights into a trainer of their own, whose callbacks
# are not the fit's and whose folder is not the run's; Lightning warns about both, though neither
# the fit's callbacks' states nor their folder matter to one pass over a split.
warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`, callbacks used to create")
warnings.filterwarnings("ignore", message="The dirpath has changed from")


def restore(cfg: DictConfig):
    """The training run's config (from the checkpoint), its data, an untrained module and the
    trainer it runs under: (train_cfg, dm, module, trainer)."""
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

    from tokentune.compat.lightning import quiet_info
    from tokentune.data.datamodule import TaskDataModule
    from tokentune.model.module import TaskModule
    from tokentune.run.trainer import check_accelerator

    check_accelerator(cfg.accelerator, 1, "accelerator")
    dm = TaskDataModule(train_cfg)
    dm.prepare_data()
    quiet_info()
    trainer = pl.Trainer(accelerator=cfg.accelerator, devices=1, logger=False,
                         precision=train_cfg.trainer.precision if cfg.accelerator != "cpu" else "32-true",
                         enable_progress_bar=True, default_root_dir=cfg.paths.output_dir)
    module = TaskModule(train_cfg, tokenizer=dm.tokenizer, base_tokenizer=dm.base_tokenizer,
                        device=trainer.strategy.root_device, from_checkpoint=True)
    return train_cfg, dm, module, trainer


def load_weights(ckpt_path, module, trainer):
    """The module with the checkpoint's weights, on the trainer's device and precision, eval mode:
    what `trainer.predict(..., ckpt_path=...)` sets up, without its loop."""
    from tokentune.run.checkpoint_file import read_checkpoint

    module.configure_model()
    checkpoint = read_checkpoint(ckpt_path)
    module.on_load_checkpoint(checkpoint)  # PEFT: the trainable weights into the rebuilt base
    module.load_state_dict(checkpoint["state_dict"], strict=True)
    module = trainer.precision_plugin.convert_module(module)
    return module.to(trainer.strategy.root_device).eval()


def inference_weights(ckpt_path, module, trainer):
    """`load_weights`, then the model in the form its method runs inference in (LoRA's deltas
    merged into the base under finetune.merge_for_inference: the same outputs, less work). Not
    for export, which writes the method's own weights."""
    module = load_weights(ckpt_path, module, trainer)
    module.model = module.method.for_inference(module.cfg.finetune, module.model)
    return module.eval()
