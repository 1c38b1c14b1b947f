"""Hydra entry points: train, evaluate, predict, export, vocab.

Start-up stays light (hydra + omegaconf only) so that `python train.py --cfg job` composes and
prints in well under the time a torch import takes; each command imports its stack when it runs.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import hydra
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from tokentune.config import CONF_DIR, register_configs, register_resolvers
from tokentune.errors import Interrupted, UserError


def _report_user_errors(job: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Print a user's mistake as one line on stderr and exit 2, instead of a traceback; a fit
    stopped by a signal prints where it stopped and exits 128 + the signal (143, 130)."""

    def wrapped(cfg: DictConfig) -> Any:
        try:
            return job(cfg)
        except Interrupted as stop:
            if not stop.quiet:
                print(stop, file=sys.stderr, flush=True)
            raise SystemExit(stop.exit_code) from None
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except OmegaConfBaseException as err:
            # e.g. a resolver that could not find a package, or a wrong type in an override; a
            # resolver's own message is the line to show, however deep OmegaConf wrapped it
            cause = err
            while cause is not None and not isinstance(cause, UserError):
                cause = cause.__cause__ or cause.__context__
            print(f"error: {cause or err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapped


def _hydra_app(config_name: str, job: Callable[[DictConfig], Any]) -> None:
    register_resolvers()
    register_configs()
    hydra.main(version_base="1.3", config_path=CONF_DIR, config_name=config_name)(
        _report_user_errors(job)
    )()


def _train(cfg: DictConfig) -> Any:
    from tokentune.run.fit import fit

    return fit(cfg)


def _evaluate(cfg: DictConfig) -> Any:
    from tokentune.run.evaluate import evaluate

    return evaluate(cfg)


def _predict(cfg: DictConfig) -> Any:
    from tokentune.run.evaluate import predict

    return predict(cfg)


def _export(cfg: DictConfig) -> Any:
    from tokentune.run.export import export_checkpoint

    return export_checkpoint(cfg)


def _vocab(cfg: DictConfig) -> Any:
    from tokentune.run.fit import vocabulary_only

    return vocabulary_only(cfg)


def train() -> None:
    _hydra_app("train", _train)


def evaluate() -> None:
    _hydra_app("evaluate", _evaluate)


def predict() -> None:
    _hydra_app("predict", _predict)


def export() -> None:
    _hydra_app("export", _export)


def vocab() -> None:
    _hydra_app("train", _vocab)
