"""torch internals (checked by tests/compat/test_torch.py)."""
from __future__ import annotations


def cpp_compiler() -> str:
    """The C++ compiler inductor would use for CPU kernels; raises when none works. torch has no
    public way to ask before the first compiled call fails."""
    from torch._inductor.cpp_builder import get_cpp_compiler

    return get_cpp_compiler()


def compiled_call(module):
    """What `nn.Module.compile` put in front of `module`'s forward (None when eager). torch keeps
    it in a private attribute, and offers no public way to read it or to undo the compile."""
    return module._compiled_call_impl


def set_compiled_call(module, call) -> None:
    """Route `module`'s calls through `call`; None makes the module eager again."""
    module._compiled_call_impl = call


def compile_error_types() -> tuple[type[BaseException], ...]:
    """What dynamo and its backends raise while compiling (every one a TorchDynamoException)."""
    from torch._dynamo.exc import TorchDynamoException

    return (TorchDynamoException,)
