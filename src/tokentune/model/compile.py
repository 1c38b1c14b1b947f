"""torch.compile for the backbone's encoder (`model.compile`).

Compiled in place (`nn.Module.compile`): parameter names, state dicts and checkpoints stay as
they are (`torch.compile(module)` would prefix every key with `_orig_mod.`). Only the encoder
(BertModel / GPT2Model, with any adapter or LoRA layers inside) is compiled; the small task head
and the loss stay eager, so the loss that Lightning keeps for logging is an ordinary tensor and
not a CUDA-graph output that the next step's replay would overwrite. The encoder is also what
the packed forward pass calls, so packed and padded batches both run compiled.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import torch

from tokentune.config import TrainConfig
from tokentune.errors import UserError
from tokentune.model.packed import transformers_model

log = logging.getLogger(__name__)


def check_compiler(device: torch.device) -> None:
    """Inductor turns graphs into C++ on a CPU: fail now, with the fix, rather than at step one."""
    if device.type != "cpu":
        return
    from torch._inductor.cpp_builder import get_cpp_compiler

    try:
        get_cpp_compiler()
    except Exception as err:
        raise UserError(f"model.compile: compiling for the CPU needs a C++ compiler (gcc or clang), "
                        f"and none works here ({err}); install one or set model.compile=null") from None


def fixed_widths(cfg: TrainConfig) -> Optional[list[int]]:
    """The widths batches can have when they are a fixed few, else None (shapes vary freely)."""
    if cfg.task.kind == "causal_lm":
        return [cfg.task.block_size]  # every block is this long
    if cfg.data.packing:
        return None  # the number of rows differs from batch to batch
    return cfg.data.widths()


def compile_encoder(model: torch.nn.Module, mode: str, *, widths: Optional[Sequence[int]],
                    device: torch.device) -> None:
    """Compile `model`'s encoder in place, with batch sizes and widths symbolic (dynamic=True).

    One compilation serves every batch shape: specialising each (dynamic=False) compiled the
    encoder once per bucket width, batch size and train/eval, and on the H200 run of c8cb7ac
    BERT-base was still compiling its shapes when the 150 s bench step ran out. CUDA graphs
    (reduce-overhead) are still recorded once per distinct shape, which is cheap; `widths` is
    only checked so that free shapes, each a new graph, are flagged."""
    check_compiler(device)
    if widths is None and mode == "reduce-overhead":
        log.warning("model.compile=reduce-overhead: batch shapes are not a fixed few (no data.buckets, "
                    "or data.packing), so a CUDA graph is recorded for every distinct shape")
    transformers_model(model).base_model.compile(mode=mode, dynamic=True)
