"""torch.compile for the backbone's transformer blocks (`model.compile`).

Regional compilation: each repeated block (the family's `blocks`: BertLayer, GPT2Block ..., with
any adapter or LoRA layers inside) is compiled, not the model as a whole. The blocks share their
code, so dynamo and inductor build one graph that every block reuses: the compile time is that
of one block whatever the depth (tiny BERT on 2 CPU cores: 77 s whole, 27 s per block at 4 layers; the whole 12-layer
BERT-base was still compiling after 80 s on the H200 node). Compiled in place
(`nn.Module.compile`): parameter names, state dicts and checkpoints stay as they are
(`torch.compile(module)` would prefix every key with `_orig_mod.`). The embeddings, the task head
and the loss stay eager, so the loss that Lightning keeps for logging is an ordinary tensor and
not a CUDA-graph output that the next step's replay would overwrite. Packed and padded batches
pass through the same blocks, so both run compiled.

Compilation happens at a block's first call, inside the first step. When it fails there (a
dynamo or inductor exception: a compiler bug, an operator inductor cannot lower), every block goes
back to eager and the call is repeated eagerly, with one warning: the run goes on at eager speed
instead of dying after its data and model were built.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import torch

from tokentune.compat.torch import compile_error_types, compiled_call, cpp_compiler, set_compiled_call
from tokentune.config import TrainConfig
from tokentune.errors import UserError
from tokentune.model.families import get_family
from tokentune.model.packed import transformers_model

log = logging.getLogger(__name__)


def check_compiler(device: torch.device) -> None:
    """Inductor turns graphs into C++ on a CPU: fail now, with the fix, rather than at step one."""
    if device.type != "cpu":
        return
    try:
        cpp_compiler()
    except Exception as err:
        raise UserError(f"model.compile: compiling for the CPU needs a C++ compiler (gcc or clang), "
                        f"and none works here ({err}); install one or set model.compile=null") from None


def fixed_widths(cfg: TrainConfig) -> Optional[list[int]]:
    """The widths batches can have when they are a fixed few, else None (shapes vary freely)."""
    if cfg.data.packing:
        return None  # the number of rows differs from batch to batch
    from tokentune.task import get_kind

    return get_kind(cfg.task.kind).fixed_widths(cfg)


def repeated_blocks(model: torch.nn.Module, family: str) -> list[torch.nn.Module]:
    """The transformer blocks (BertLayer, GPT2Block ...): the family's `blocks` list."""
    return list(transformers_model(model).base_model.get_submodule(get_family(family).blocks))


def compile_blocks(model: torch.nn.Module, mode: str, *, family: str, method: str,
                   widths: Optional[Sequence[int]], device: torch.device) -> None:
    """Compile `model`'s transformer blocks in place, with batch sizes and widths symbolic
    (dynamic=True).

    One compilation serves every batch shape: specialising each (dynamic=False) compiles once per
    bucket width, batch size and train/eval. CUDA graphs (reduce-overhead) are still recorded once
    per distinct shape, which is cheap; `widths` is only checked so that free shapes, each a new
    graph, are flagged."""
    check_compiler(device)
    if widths is None and mode == "reduce-overhead":
        log.warning("model.compile=reduce-overhead: batch shapes are not a fixed few (no data.buckets, "
                    "or data.packing), so a CUDA graph is recorded for every distinct shape")
    blocks = repeated_blocks(model, family)
    fallback = EagerFallback(blocks, f"model.compile={mode} of {family} blocks under finetune={method}")
    for block in blocks:
        block.compile(mode=mode, dynamic=True)
        fallback.guard(block)


class EagerFallback:
    """Turns a compile-time failure of any block into eager blocks and one warning."""

    def __init__(self, blocks: list[torch.nn.Module], what: str):
        self.blocks, self.what = blocks, what

    def guard(self, block: torch.nn.Module) -> None:
        compiled, errors = compiled_call(block), compile_error_types()

        def call(*args, **kwargs):
            try:
                return compiled(*args, **kwargs)
            except errors as err:
                self.to_eager(err)
                return block(*args, **kwargs)

        set_compiled_call(block, call)

    def to_eager(self, err: BaseException) -> None:
        for block in self.blocks:
            set_compiled_call(block, None)
        cause = getattr(err, "inner_exception", None) or err  # a backend's own error, unwrapped
        reason = (str(cause).strip().splitlines() or [""])[0]
        log.warning("%s failed to compile (%s: %s); running eager", self.what, type(cause).__name__, reason)
