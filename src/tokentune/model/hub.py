"""Loading from the Hugging Face hub or a local folder, with an offline-friendly error."""
from __future__ import annotations

from typing import Callable, TypeVar

from tokentune.errors import UserError

T = TypeVar("T")


def from_hub(load: Callable[..., T], name: str, key: str, **kwargs) -> T:
    """`load(name, **kwargs)`, turning "could not reach / find it" into one clear message (an
    unreachable hub: at its first connection error)."""
    from tokentune.compat.huggingface_hub import fail_at_first_connection_error

    fail_at_first_connection_error()
    try:
        return load(name, **kwargs)
    except OSError as err:  # transformers raises OSError for offline, missing repo, missing files
        raise UserError(
            f"{key}: could not load '{name}' ({str(err).splitlines()[0][:200]}). Without internet "
            "access, use a local folder (e.g. model=minilm, or model.pretrained=/path/to/model) "
            "and set HF_HUB_OFFLINE=1 to use what is already in the Hugging Face cache") from None
