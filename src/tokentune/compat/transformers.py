"""transformers internals (checked by tests/compat/test_transformers.py)."""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator


def attn_implementation(model: Any) -> str:
    """The attention kernel the model runs ("sdpa", "eager", ...). transformers sets it from the
    `attn_implementation` argument (or its own choice) and exposes it only as a private config
    attribute; the mask format tokentune builds depends on it."""
    return model.config._attn_implementation


# The first release whose models take `cache` where peft's prefix tuning passes `past_key_values`
# (pyproject.toml bounds transformers below it; this catches an upgrade made past the bound).
CACHE_RENAMED = (5, 24)


def installed_version() -> tuple[int, int]:
    """transformers' (major, minor), read from the installed metadata: importing transformers
    here would put it on the composition path."""
    from importlib.metadata import version

    major, minor = version("transformers").split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


@contextlib.contextmanager
def load_report_hidden() -> Iterator[None]:
    """from_pretrained without its load report (the MISSING / UNEXPECTED keys table), which
    transformers logs as a warning through the transformers.modeling_utils logger."""
    logger = logging.getLogger("transformers.modeling_utils")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
