"""torch internals (checked by tests/compat/test_torch.py)."""
from __future__ import annotations


def cpp_compiler() -> str:
    """The C++ compiler inductor would use for CPU kernels; raises when none works. torch has no
    public way to ask before the first compiled call fails."""
    from torch._inductor.cpp_builder import get_cpp_compiler

    return get_cpp_compiler()
