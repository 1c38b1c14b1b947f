from __future__ import annotations

import pytest

from conftest import DATA

SQUAD = DATA / "squad" if DATA is not None and (DATA / "squad" / "dev-v2.0.json").is_file() else None
needs_squad = pytest.mark.skipif(SQUAD is None, reason="real data absent: ../shared/data/squad (the SQuAD "
                                 "excerpts) not found; set TOKENTUNE_DATA to run the SQuAD tests")
