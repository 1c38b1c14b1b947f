"""The dynamic vocabulary: spec, build + cache, embedding induction, report.

Import-light: only the spec is imported here (it is on the `--cfg job` path); the rest loads
on first use, e.g. `from tokentune.vocab.build import load_or_build`.
"""
from tokentune.vocab.spec import CorpusConfig, TokenizerConfig

__all__ = ["CorpusConfig", "TokenizerConfig"]
