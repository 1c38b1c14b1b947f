"""`tokentune-train`: check the config, prepare data, fit, score the best checkpoint, report."""
from __future__ import annotations

import logging
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

from omegaconf import DictConfig, OmegaConf

from tokentune.atomic import write_atomic, write_error
from tokentune.config import TrainConfig, resumed_run, validate
from tokentune.errors import UserError

log = logging.getLogger(__name__)


def check_limits(cfg: TrainConfig):
    """Limits that need the backbone's config (not its weights): fail before any heavy work.

    Returns the backbone's transformers config."""
    from tokentune.model.backbone import max_positions, model_config

    config = model_config(cfg.model)
    from tokentune.task import get_kind

    limit = max_positions(config)
    key, length = get_kind(cfg.task.kind).length_limit(cfg)
    if length > limit:
        raise UserError(f"{key}: {length} is above the model's {limit} positions")
    return config


def report_vocabulary(dm, backbone_config, run_dir: Path, show: Callable[[str], None]) -> dict:
    """The vocabulary report: vocab_report.json/.md in the run dir, and its text shown once
    through `show` (a fit logs it; tokentune-vocab prints it, as its output)."""
    from tokentune.vocab.report import format_report, unknown_warnings, vocab_report, write_report

    dim = getattr(backbone_config, "hidden_size", None) or backbone_config.n_embd
    report = vocab_report(dm.tokenizer, dm.base_tokenizer, dm.texts, dim)
    write_report(report, run_dir)
    show(format_report(report))
    for line in unknown_warnings(report, list(dm.cfg.tokenizer.corpus.splits)):
        log.warning(line)
    return report


def fit(dcfg: DictConfig, extra_callbacks: Sequence = ()) -> dict:
    start = time.perf_counter()
    cfg = validate(dcfg)
    from tokentune.run.trainer import check_accelerator

    check_accelerator(cfg.trainer.accelerator, cfg.trainer.devices, "trainer.accelerator")
    run_dir = Path(cfg.paths.output_dir)
    changes: dict = {}
    if cfg.ckpt_path:
        from tokentune.run.checkpoint_file import read_checkpoint
        from tokentune.run.resume_check import resume_changes

        ckpt = Path(cfg.ckpt_path)
        # a missing, cut or foreign file fails here, before any model is built; so does a checkpoint
        # of another model, method, vocabulary or task, or one trained with other settings (unless
        # resume.allow_changes): before anything is written into the run's directory
        changes = resume_changes(str(ckpt), read_checkpoint(ckpt)["hyper_parameters"]["cfg"], cfg)
        if (continued := resumed_run(ckpt)) is not None:
            # a resumed run continues its own directory: best-checkpoint tracking, logs, results
            run_dir = Path(continued)
            cfg.paths.output_dir = str(run_dir)
    if cfg.export:
        check_model_dir(run_dir / "model")
    check_run_files(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(run_dir, err) from err

    import pytorch_lightning as pl

    from tokentune.data.datamodule import TaskDataModule
    from tokentune.model.module import TaskModule
    from tokentune.run.export import directory_size_mb, export_model
    from tokentune.run.guards import Interruption
    from tokentune.run.model_card import write_model_card
    from tokentune.run.results import RunResults, metrics_to_floats, summary
    from tokentune.run.tracking import log_reports, tracking
    from tokentune.run.trainer import build_trainer

    backbone_config = check_limits(cfg)
    dm = TaskDataModule(cfg)
    dm.read()  # every row checked before anything is written into the run's folder
    # The DataModule's state_dict resumes the batch order mid-epoch; Lightning cannot see that
    warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    interruption = Interruption(run_dir)  # SIGTERM / SIGINT: last.ckpt at the next step (run/guards.py)
    trainer = build_trainer(cfg, run_dir, [interruption, *extra_callbacks], started=start)
    # Under DDP every rank runs this function in the same run_dir; global rank 0 alone writes files
    writer = trainer.is_global_zero
    if writer:
        write_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(dcfg, resolve=True))
        if changes:
            log.warning("resumed with settings the checkpoint was not trained with "
                        "(resume.allow_changes): %s",
                        ", ".join(f"{k} {old!r} → {new!r}" for k, (old, new) in changes.items()))
    dm.prepare_data()  # the vocabulary and the tokenized splits, before a model is loaded
    vocab = report_vocabulary(dm, backbone_config, run_dir, partial(log.info, "vocabulary:\n%s")) if writer else {}
    module = TaskModule(cfg, tokenizer=dm.tokenizer, base_tokenizer=dm.base_tokenizer,
                        device=trainer.strategy.root_device, from_checkpoint=bool(cfg.ckpt_path))
    with tracking(trainer.loggers), interruption.handling(trainer):
        # weights_only: checkpoints are data (see tokentune.run.checkpoint_file), also those we wrote
        trainer.fit(module, datamodule=dm, ckpt_path=cfg.ckpt_path, weights_only=True)
        interruption.after_fit(trainer)  # a signal in the fit's last validation

        ckpt = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else None
        best = ckpt or None
        # one dict per validation split's dataloader, each holding every split's metrics
        validation = {k: v for scores in trainer.validate(module, datamodule=dm, ckpt_path=best, verbose=False,
                                                          weights_only=True) for k, v in scores.items()}
        interruption.after_scoring(trainer)
        test, predictions = {}, {}
        if cfg.test and dm.has_labels("test"):
            test = trainer.test(module, datamodule=dm, ckpt_path=best, verbose=False,
                                weights_only=True)[0]
        unlabelled = [s for s in cfg.task.splits if (s == "test" or s.startswith("test_")) and not dm.has_labels(s)]
        if cfg.test and unlabelled:
            # an unlabelled test split (GLUE's) gets its submission file, as run_glue's do_predict
            if trainer.world_size == 1:
                from tokentune.run.evaluate import write_predictions

                predictions = {s: str(write_predictions(trainer, module, dm, s, best, run_dir)[0])
                               for s in unlabelled}
            else:
                log.info("test predictions: run tokentune-predict ckpt_path=<best.ckpt> (one process)")
        validation_predictions = None
        if dm.kind.predicts_validation and trainer.world_size == 1:
            from tokentune.run.evaluate import write_predictions

            validation_predictions = str(write_predictions(trainer, module, dm, cfg.task.validation_splits[0], best,
                                                           run_dir)[0])
        interruption.after_scoring(trainer)
        exported = None
        if cfg.export and cfg.trainer.strategy == "fsdp":
            # each rank holds a shard of the weights; best.ckpt is gathered into one file
            log.info("export: not written under FSDP; the gathered checkpoint holds the run")
        elif writer and best and cfg.export:  # the module holds the best weights since validate()
            # an earlier export in run/model (a resumed run's) is replaced whole; check_model_dir
            # refused any other folder there before the fit began
            exported = export_model(module.model, dm.tokenizer, cfg, run_dir / "model", overwrite=True)
        interruption.after_scoring(trainer)
        parts = resume_state(trainer).parts_s()  # this command's, after any it resumes
        results = RunResults(
            run_dir=str(run_dir),
            task=cfg.task.name, model=cfg.model.name, finetune=cfg.finetune.method,
            tokenizer=cfg.tokenizer.name, seed=cfg.seed,
            validation=metrics_to_floats(validation), test=metrics_to_floats(test),
            test_predictions=predictions,
            validation_predictions=validation_predictions,
            best_checkpoint=best,
            checkpoint_mb=Path(best).stat().st_size / 2**20 if best else None,
            epochs=trainer.current_epoch, steps=trainer.global_step,
            parameters=module.parameter_report,
            vocabulary={k: vocab[k] for k in ("vocab_size", "embedding_params") if k in vocab},
            induction=module.induction_stats,
            data=dm.data_report,
            model_dir=str(exported) if exported else None,
            # a resume's settings that differ from its checkpoint's: {key: [checkpoint's, this run's]}
            resume_changes=changes,
            wall_time_s=sum(parts),
            wall_time_parts_s=parts,
        )
        if exported:
            write_model_card(cfg, results, {split: len(t) for split, t in dm.texts.items()}, exported)
            results.model_mb = directory_size_mb(exported)
        if writer:
            from tokentune.vocab.report import model_sizes, write_report

            vocab.update(model_sizes(module.model, vocab["vocab_size"], vocab["base_vocab_size"],
                                     checkpoint_mb=results.checkpoint_mb, model_mb=results.model_mb))
            write_report(vocab, run_dir)
            results.write(run_dir / "results.json")
            log_reports(trainer.loggers,
                        {"vocabulary": vocab, "parameters": module.parameter_report})
    if writer:
        print(summary(results), flush=True)
    return results.to_json()  # the Hydra job's return value (read by the Optuna sweeper)


# The files a fit writes into its folder: a folder in the place of one would stop it at the end
RUN_FILES = ("config.yaml", "results.json", "vocab_report.json", "vocab_report.md", "logs/metrics.csv",
             "checkpoints/best.ckpt", "checkpoints/last.ckpt")


def check_run_files(run_dir: Path) -> None:
    for name in RUN_FILES:
        if (run_dir / name).is_dir():
            raise UserError(f"{run_dir / name} is a folder; the run writes its {name} there: move "
                            "the folder away, or choose another paths.output_dir")


def resume_state(trainer) -> "ResumeState":
    from tokentune.run.resume import ResumeState

    return next(c for c in trainer.callbacks if isinstance(c, ResumeState))


def check_model_dir(folder: Path) -> None:
    """A fit writes its model to <run>/model at its end: refuse at its start a folder there that
    an export would replace and that is not an earlier export (run/export.py)."""
    from tokentune.run.export import is_export

    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file; the run writes its model folder there: move the file "
                        f"away, or pass export=false")
    if folder.is_dir() and any(folder.iterdir()) and not is_export(folder):
        raise UserError(f"{folder} is not empty and is not a tokentune export (it has no "
                        f"tokentune.json); the run would replace it with its model: move it away, "
                        f"or pass export=false")


def vocabulary_only(dcfg: DictConfig) -> dict:
    """Build or load the run's vocabulary and print its report; no model, no training."""
    from tokentune.data.datamodule import TaskDataModule

    cfg = validate(dcfg)
    backbone_config = check_limits(cfg)
    dm = TaskDataModule(cfg)
    dm.prepare_data()
    return report_vocabulary(dm, backbone_config, Path(cfg.paths.output_dir), partial(print, flush=True))
