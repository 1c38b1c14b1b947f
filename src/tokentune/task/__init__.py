"""Task kinds (classification, regression, causal LM, ...): one registered object each.

`get_kind(cfg.task.kind)` answers everything that differs between them (tokentune.task.kind);
the registry is tokentune.task.registry.
"""
from tokentune.task.registry import KINDS, get_kind

__all__ = ["KINDS", "get_kind"]
