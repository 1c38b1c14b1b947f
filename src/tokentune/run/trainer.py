"""A Lightning Trainer from the trainer, logger and callbacks groups."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning import callbacks as cb

from tokentune.compat import lightning as compat
from tokentune.config import TrainConfig
from tokentune.errors import UserError
from tokentune.model.metrics import higher_is_better
from tokentune.run.checkpoint_io import AtomicCheckpointIO
from tokentune.run.distributed import build_strategy
from tokentune.run.guards import FiniteLoss
from tokentune.run.progress import RichLossBar, TQDMLossBar
from tokentune.run.resume import CSVLogger, ResumeState


def check_accelerator(accelerator: str, devices, key: str) -> None:
    """A GPU asked for that torch cannot see, or more of them than it sees: one line before any
    data or model is loaded (Lightning's own refusal is a traceback once the Trainer is built)."""
    import torch

    if accelerator not in ("gpu", "cuda"):
        return
    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not found:
        build = "a CPU-only build of torch" if torch.version.cuda is None else "no CUDA device visible"
        raise UserError(f"{key}={accelerator}, but torch {torch.__version__} finds no GPU here "
                        f"({build}); use trainer=cpu, or run on a machine with a CUDA GPU")
    if isinstance(devices, int) and devices > found:
        raise UserError(f"trainer.devices={devices}, but torch finds {found} GPU(s) here; "
                        f"use trainer.devices={found} or fewer")


def build_logger(cfg: TrainConfig, run_dir: Path):
    kind = cfg.logger.kind
    if kind == "none":
        return False
    if kind == "csv":
        # a resumed run keeps the rows its interrupted part logged (Lightning's would delete them)
        return CSVLogger(save_dir=str(run_dir), name="logs", version="")
    if kind == "tensorboard":
        try:
            return pl.loggers.TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="")
        except ModuleNotFoundError:
            raise UserError("logger=tensorboard needs `pip install tensorboard`") from None
    offline = cfg.logger.offline
    if offline is None:  # no key, no network: log locally, sync later with `wandb sync`
        offline = not os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") == "offline"
    return pl.loggers.WandbLogger(project=cfg.logger.project, group=cfg.logger.group,
                                  save_dir=str(run_dir), offline=offline)


def build_callbacks(cfg: TrainConfig, run_dir: Path, started: float | None = None) -> list[pl.Callback]:
    c, monitor = cfg.callbacks, cfg.task.monitor_key
    mode = "max" if higher_is_better(cfg.task.monitored[1]) else "min"
    # the RNG states and logged rows a checkpoint needs for a bit-identical resume (run/resume.py);
    # a training loss gone to nan or inf stops the fit (run/guards.py)
    out: list[pl.Callback] = [ResumeState(started), FiniteLoss(cfg)]
    if c.checkpoint:
        # checkpoints are written beside their final name and renamed (AtomicCheckpointIO)
        # last.ckpt: the state after every validation, or every n training steps. Not the best
        # callback's save_last alone: since Lightning 2.6 that writes only when a new best is saved
        every_n = c.every_n_train_steps
        out.append(cb.ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), filename="best",
                                      monitor=monitor, mode=mode, save_top_k=1, save_last=bool(every_n),
                                      auto_insert_metric_name=False, enable_version_counter=False))
        out.append(cb.ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), filename="last",
                                      every_n_train_steps=every_n or None, save_top_k=1,
                                      enable_version_counter=False))
    if c.early_stopping_patience:
        out.append(cb.EarlyStopping(monitor=monitor, mode=mode, patience=c.early_stopping_patience))
    if c.lr_monitor and cfg.logger.kind != "none":
        out.append(cb.LearningRateMonitor(logging_interval="step"))
    if c.progress_bar == "tqdm":
        out.append(TQDMLossBar(every=c.refresh_rate))
    elif c.progress_bar == "rich":
        out.append(RichLossBar(every=c.refresh_rate))
    return out


def build_trainer(cfg: TrainConfig, run_dir: Path, extra_callbacks: list[pl.Callback] = (),
                  started: float | None = None) -> pl.Trainer:
    """`started`: perf_counter() when the command began (its wall time counts from there)."""
    compat.quiet_info()
    kwargs = dataclasses.asdict(cfg.trainer)
    del kwargs["ddp_timeout_s"]  # inside the strategy object
    kwargs["strategy"] = build_strategy(cfg.trainer, cfg.model.family)
    kwargs["enable_progress_bar"] = cfg.callbacks.progress_bar != "none"
    callbacks = build_callbacks(cfg, run_dir, started) + list(extra_callbacks)
    return pl.Trainer(
        **kwargs,
        logger=build_logger(cfg, run_dir),
        callbacks=callbacks,
        enable_checkpointing=cfg.callbacks.checkpoint,
        default_root_dir=str(run_dir),
        # every strategy (one device, DDP, FSDP's full state dict) saves through it
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # our batch sampler shards global batches by rank itself
    )
