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
