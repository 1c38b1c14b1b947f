from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _single_thread():
    # Matrices this small gain nothing from intra-op threads, and on a busy machine the
    # OpenMP workers wait on each other: one forward pass went from ~2 ms to ~200 ms.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
