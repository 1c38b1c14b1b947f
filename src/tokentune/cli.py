"""Hydra entry points: train, evaluate, predict, export, vocab.

Start-up stays light (hydra + omegaconf only) so that `python train.py --cfg job` composes and
prints in well under the time a torch import takes; each command imports its stack when it runs.
"""
from __future__ import annotations

import re
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


# predict's keys whose values are a user's own text: commas, quotes, `=`, `${` are the text's
FREE_TEXT = ("text", "pair", "question", "context")


def hydra_quoted(text: str) -> str:
    """`text` as a single-quoted value of Hydra's override grammar that parses back to `text`.

    Backslashes are literal there except before a quote or at the end, and OmegaConf reads `${`
    as an interpolation unless escaped."""
    text = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", text)
    text = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, text)
    return "'" + text.replace("'", "\\'") + "'"


def quote_free_text(args: list[str]) -> list[str]:
    """Each `key=value` of FREE_TEXT with its value quoted for Hydra, so that what the user typed
    is the text (`text="a gripping, funny film"` fails Hydra's grammar otherwise). A value that
    starts with `[` stays a Hydra list: several texts, or a pair."""
    quoted = []
    for arg in args:
        key, eq, value = arg.partition("=")
        if eq and key in FREE_TEXT and not value.startswith("["):
            arg = f"{key}={hydra_quoted(value)}"
        quoted.append(arg)
    return quoted


def predict() -> None:
    sys.argv[1:] = quote_free_text(sys.argv[1:])
    _hydra_app("predict", _predict)


def export() -> None:
    _hydra_app("export", _export)


def vocab() -> None:
    _hydra_app("train", _vocab)
