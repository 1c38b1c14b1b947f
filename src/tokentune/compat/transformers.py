"""transformers internals (checked by tests/compat/test_transformers.py)."""
from __future__ import annotations

from typing import Any


def attn_implementation(model: Any) -> str:
    """The attention kernel the model runs ("sdpa", "eager", ...). transformers sets it from the
    `attn_implementation` argument (or its own choice) and exposes it only as a private config
    attribute; the mask format tokentune builds depends on it."""
    return model.config._attn_implementation

