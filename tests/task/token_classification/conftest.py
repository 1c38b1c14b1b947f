"""The real CoNLL-2003 copy."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import DATA, ROOT


def conll_dir() -> Path | None:
    """CoNLL-2003 train/valid: $TOKENTUNE_DATA/conll2003, else beside GLUE or ../shared/data."""
    candidates = [Path(os.environ["TOKENTUNE_DATA"])] if os.environ.get("TOKENTUNE_DATA") else []
    candidates += [DATA] if DATA is not None else []
    candidates.append(ROOT.parent / "shared" / "data")
    return next((c / "conll2003" for c in candidates if (c / "conll2003" / "valid.txt").is_file()), None)


CONLL = conll_dir()
needs_conll = pytest.mark.skipif(
    CONLL is None, reason="real data absent: set TOKENTUNE_DATA to a folder holding conll2003/ "
                          "to run the CoNLL-2003 tests")
