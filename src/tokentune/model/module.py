"""The LightningModule: backbone + vocabulary induction + fine-tuning method, and a plain step.

The step is the whole training logic: forward, loss, nothing that waits on the device (the loss
is logged as a tensor for the loggers only; Lightning would read a prog_bar value back after
every step, so the progress bar fetches it itself when it redraws). Metrics accumulate in
torchmetrics objects and are computed once at the end of each evaluation epoch.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any, Optional

import pytorch_lightning as pl
import torch

from tokentune.config import TrainConfig, stage
from tokentune.finetune.registry import get_method
from tokentune.model.packed import packed_forward, padding_block_mask
from tokentune.task import get_kind
from tokentune.task.kind import examples_in

log = logging.getLogger(__name__)


class TaskModule(pl.LightningModule):
    """`tokenizer` is the run's vocabulary and `base_tokenizer` the backbone's own (the same object
    unless the run builds, extends or trims one: `TaskDataModule.tokenizer` and `.base_tokenizer`);
    `device` is the one the model will run on (`trainer.strategy.root_device`), which
    `configure_model` needs before Lightning moves the module there. `from_checkpoint`: the
    caller loads a checkpoint's weights into the model (a resume, evaluate, predict, export), so
    the backbone's load report is not shown."""

    def __init__(self, cfg: TrainConfig, *, tokenizer, base_tokenizer, device: torch.device | str,
                 from_checkpoint: bool = False):
        super().__init__()
        self.cfg = cfg
        self.tokenizer, self.base_tokenizer = tokenizer, base_tokenizer
        self.target_device = torch.device(device)
        self.from_checkpoint = from_checkpoint
        self.kind = get_kind(cfg.task.kind)
        self.method = get_method(cfg.finetune.method)
        self.save_hyperparameters({"cfg": asdict(cfg)})
        self.model: Optional[torch.nn.Module] = None
        self.parameter_report: dict = {}
        self.induction_stats: Optional[dict] = None
        # one set per validation split (MNLI's matched and mismatched are scored side by side) and the test split's
        stages = [stage(s) for s in cfg.task.validation_splits] + ["test"]
        self.metrics = torch.nn.ModuleDict({
            s: self.kind.build_metrics(cfg.task).clone(prefix=f"{s}/") for s in stages})
        self.eval_loss = torch.nn.ModuleDict({s: _mean() for s in stages})
        self.val_stages = stages[:-1]  # per validation dataloader (the datamodule's val_splits)
        self.stage_splits: dict[str, str] = {}  # the split each stage scores, set as it starts

    # -- model ---------------------------------------------------------------------------
    def configure_model(self) -> None:
        if self.model is not None:
            return
        from tokentune.finetune.apply import apply
        from tokentune.finetune.report import format_parameter_report, parameter_report
        from tokentune.model.backbone import load_backbone

        tok, base = self.tokenizer, self.base_tokenizer
        model = load_backbone(self.cfg.model, self.cfg.task, pad_token_id=base.pad_token_id,
                               seed=self.cfg.seed, filled=self.from_checkpoint)
        new_vocab = tok is not base
        if new_vocab:
            from tokentune.vocab.induction import induce_embeddings

            # on its own RNG stream: resizing draws random rows, and the dropout masks of training
            # must not depend on the vocabulary (a trimmed run then trains exactly as the untrimmed)
            with torch.random.fork_rng(devices=[]):
                self.induction_stats = induce_embeddings(model, base, tok, self.cfg.tokenizer.induction,
                                                         seed=self.cfg.seed)
        model.train()  # from_pretrained returns eval mode; Lightning keeps modes as it finds them
        # trimmed rows are the backbone's own: under PEFT they stay frozen, as untrimmed ones would
        induced = new_vocab and self.cfg.tokenizer.mode != "trim"
        self.model = apply(self.cfg.finetune, model, family=self.cfg.model.family,
                           task_kind=self.cfg.task.kind, train_embeddings=induced,
                           max_length=self.cfg.data.max_length)
        if self.cfg.model.dtype != "float32" and self.cfg.trainer.precision == "bf16-mixed":
            # a bf16 base under autocast: what trains keeps float32 master weights (peft already
            # makes LoRA's so; adapters and the head come in the base's dtype)
            for p in self.model.parameters():
                if p.requires_grad:
                    p.data = p.data.float()
        self.parameter_report = parameter_report(self.model)
        log.info("parameters: %s", format_parameter_report(self.parameter_report))
        if self.cfg.model.compile:
            from tokentune.model.compile import compile_blocks, fixed_widths

            compile_blocks(self.model, self.cfg.model.compile, family=self.cfg.model.family,
                           method=self.cfg.finetune.method, widths=fixed_widths(self.cfg),
                           device=self.target_device)

    def forward(self, batch: dict[str, torch.Tensor]):
        if self.cfg.model.compile == "reduce-overhead":
            # a new step for the CUDA graphs: the previous step's graph outputs may be reused
            torch.compiler.cudagraph_mark_step_begin()
        if "pool_index" in batch:  # a packed batch (data.packing)
            return packed_forward(self.model, batch, family=self.cfg.model.family)
        batch = self.kind.model_inputs(batch)
        if not self.method.virtual_tokens:  # peft widens a 2D mask by its virtual tokens
            batch = {**batch, "attention_mask": padding_block_mask(self.model, batch["attention_mask"],
                                                                   family=self.cfg.model.family)}
        return self.model(**batch)

    # -- steps -----------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.kind.training_loss(self(batch).loss, batch, self)
        # a tensor, for the loggers only: Lightning reads it back every trainer.log_every_n_steps
        self.log("train/loss", loss, on_step=True, on_epoch=False, batch_size=examples_in(batch))
        return loss

    def _eval_step(self, stage: str, batch: dict[str, torch.Tensor]) -> None:
        out = self(batch)
        self.eval_loss[stage].update(out.loss.detach(), self.kind.loss_weight(batch))
        self.kind.update_metrics(self.metrics[stage], out, batch)

    def _eval_epoch_end(self, stage: str) -> None:
        self.kind.bind_metrics(self.metrics[stage], self.trainer.datamodule, self.stage_splits[stage])
        values = self.metrics[stage].compute()
        values[f"{stage}/loss"] = self.eval_loss[stage].compute()
        self.log_dict(values, prog_bar=stage.startswith("val"))
        self.metrics[stage].reset()
        self.eval_loss[stage].reset()

    def on_validation_start(self) -> None:
        splits = self.trainer.datamodule.val_splits
        self.val_stages = [stage(s) for s in splits]
        self.stage_splits.update(zip(self.val_stages, splits))

    def on_test_start(self) -> None:
        self.stage_splits["test"] = self.trainer.datamodule.test_split

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self._eval_step(self.val_stages[dataloader_idx], batch)

    def on_validation_epoch_end(self):
        for s in self.val_stages:
            self._eval_epoch_end(s)

    def test_step(self, batch, batch_idx):
        self._eval_step("test", batch)

    def on_test_epoch_end(self):
        self._eval_epoch_end("test")

    def predict_step(self, batch, batch_idx):
        batch = {k: v for k, v in batch.items() if k != "labels"}
        return self.kind.batch_predictions(self.cfg.task, self(batch), batch)

    # -- optimisation ----------------------------------------------------------------------
    def configure_optimizers(self):
        return self.optimization(int(self.trainer.estimated_stepping_batches), self.trainer.precision)

    def optimization(self, total_steps: int, precision: str) -> dict:
        """AdamW and the learning-rate schedule over `total_steps` optimizer steps, under the
        trainer's `precision`, as Lightning's configure_optimizers returns them."""
        from transformers import get_scheduler

        opt = self.cfg.optimizer
        params = [p for p in self.model.parameters() if p.requires_grad]
        # no weight decay on biases and LayerNorm gains (the 1-d parameters), as in BERT
        groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": opt.weight_decay},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
        # fused AdamW: one kernel for all parameters. Not under fp16's GradScaler, whose scaled
        # gradients the fused step unscales only inside itself, after clipping would have run
        fused = self.device.type == "cuda" and precision != "16-mixed"
        optimizer = torch.optim.AdamW(groups, lr=opt.lr, betas=tuple(opt.betas), eps=opt.eps, fused=fused)
        name = "constant_with_warmup" if opt.scheduler == "constant" else opt.scheduler
        scheduler = get_scheduler(name, optimizer, num_warmup_steps=int(opt.warmup_ratio * total_steps),
                                  num_training_steps=total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        # Lightning's mixed-precision plugin refuses to clip for any optimizer that unscales
        # gradients itself (fused AdamW), a rule made for fp16's GradScaler; fp16 gets no fused
        # optimizer (configure_optimizers), so under bf16 and fp32 the gradients are plain and
        # clipping them directly is what Lightning would do (trainer.gradient_clip_val, by norm;
        # no host sync: the norm stays on the device)
        if gradient_clip_val:
            torch.nn.utils.clip_grad_norm_([p for p in self.parameters() if p.grad is not None],
                                           gradient_clip_val)

    # -- checkpoints -----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if not self.method.whole_model_checkpoint:  # the frozen base is rebuilt from cfg (in hyper_parameters)
            checkpoint["state_dict"] = {f"model.{k}": v for k, v in self.method.checkpoint_state(self.model).items()}
        # the RNG states a resumed fit needs are the ResumeState callback's (run/resume.py)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if not self.method.whole_model_checkpoint:
            self.method.restore_checkpoint_state(self.model, {k.removeprefix("model."): v
                                                              for k, v in checkpoint["state_dict"].items()})
            checkpoint["state_dict"] = self.state_dict()  # Lightning's strict load now finds every key


def _mean():
    import torchmetrics

    # a NaN loss shows as NaN rather than being dropped; and no check that reads values back per step
    return torchmetrics.MeanMetric(nan_strategy="disable")
