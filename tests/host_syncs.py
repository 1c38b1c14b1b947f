"""Record the Python-level calls that read a tensor's value back to the host.

On a GPU each such call waits for the device (`torch.cuda.set_sync_debug_mode` catches them
there, and C++-internal ones too); a CPU build has no device to wait for, so this patches the
Tensor methods that read values (item, tolist, numpy, cpu, bool/int/float conversion) and
notes, for each call, its immediate caller and the first caller outside torch. Calls made while
a DataLoader builds a batch are left out: those read host tensors in the loader, not device
results.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch

METHODS = ("item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__")
TORCH_DIR = str(Path(torch.__file__).parent) + os.sep  # the separator keeps torchmetrics out
LOADER_DIR = str(Path(torch.__file__).parent / "utils" / "data") + os.sep


@dataclass(frozen=True)
class Sync:
    step: int
    caller: str  # "path:function" of the frame that read the value
    site: str  # the same for the first frame outside torch


@dataclass
class SyncLog:
    step: int = -1  # set by the caller (e.g. a callback at each batch start)
    calls: list[Sync] = field(default_factory=list)

    def at(self, step: int) -> list[Sync]:
        return [c for c in self.calls if c.step == step]


def _where(frame) -> str:
    return f"{frame.f_code.co_filename}:{frame.f_code.co_name}"


def _record(log: SyncLog, frame) -> None:
    caller, site = _where(frame), None
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(LOADER_DIR):
            return  # a DataLoader building a batch
        if site is None and not path.startswith(TORCH_DIR):
            site = _where(frame)
        frame = frame.f_back
    log.calls.append(Sync(log.step, caller, site or caller))


@contextmanager
def record_host_syncs() -> Iterator[SyncLog]:
    log = SyncLog()
    originals = {name: getattr(torch.Tensor, name) for name in METHODS}
    own = {name for name in METHODS if name in vars(torch.Tensor)}  # the rest are inherited from C

    def patched(name):
        original = originals[name]

        def read_back(self, *args, **kwargs):
            _record(log, sys._getframe(1))
            return original(self, *args, **kwargs)

        return read_back

    for name in METHODS:
        setattr(torch.Tensor, name, patched(name))
    try:
        yield log
    finally:
        for name, original in originals.items():
            if name in own:
                setattr(torch.Tensor, name, original)
            else:
                delattr(torch.Tensor, name)
