"""The torch internal tokentune/compat/torch.py calls: still there, still answering."""
import shutil

import pytest
import torch

from tokentune.compat.torch import cpp_compiler

FIX = "update tokentune/compat/torch.py"


def test_inductor_names_the_cpp_compiler_it_would_use():
    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        pytest.skip("no C++ compiler on this machine: there is nothing for inductor to find")
    try:
        compiler = cpp_compiler()
    except (ImportError, AttributeError) as err:
        pytest.fail(f"torch {torch.__version__}: torch._inductor.cpp_builder.get_cpp_compiler is "
                    f"gone ({err}); {FIX}")
    assert isinstance(compiler, str) and shutil.which(compiler), (
        f"torch {torch.__version__}: get_cpp_compiler() gave {compiler!r}, not a compiler on PATH; {FIX}")


def test_a_compiled_module_keeps_its_compiled_call_where_tokentune_reads_and_clears_it():
    from tokentune.compat.torch import compiled_call, set_compiled_call

    layer = torch.nn.Linear(2, 2)
    assert compiled_call(layer) is None
    layer.compile()
    assert callable(compiled_call(layer)), f"torch {torch.__version__}: nn.Module._compiled_call_impl moved; {FIX}"
    calls = []
    set_compiled_call(layer, lambda *a, **k: calls.append(a) or "routed")
    assert layer(torch.ones(2)) == "routed" and len(calls) == 1
    set_compiled_call(layer, None)
    assert torch.equal(layer(torch.ones(2)), torch.nn.functional.linear(torch.ones(2), layer.weight, layer.bias))
