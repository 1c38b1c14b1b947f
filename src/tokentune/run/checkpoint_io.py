"""Checkpoints written as every other file of a run: through `tokentune.atomic.write_atomic`.

Lightning's TorchCheckpointIO writes through an fsspec transaction whose temporary file is made
in the system's temp folder; when that is another filesystem than the run's (a tmpfs /tmp, a
node-local disk beside a network share) the commit is a copy, and a disk that fills up during it
leaves a half-written checkpoint under its final name. Here the temporary file sits beside the
checkpoint, is fsynced and renamed; a failed write leaves the previous checkpoint as it was and
stops the run with one line (`cannot write <path>: [Errno 28] ...`).

The Trainer gets it through `plugins=` (run/trainer.py): Lightning hands it to whichever strategy
runs, the single-device one, DDP and FSDP (a "full" state dict: rank 0 writes one file through
the strategy's checkpoint_io) alike; SLURM's requeue checkpoint goes through it too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from lightning_fabric.plugins import TorchCheckpointIO
from lightning_fabric.utilities.types import _PATH

from tokentune.atomic import write_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH,
                        storage_options: Optional[Any] = None) -> None:
        if storage_options is not None or "://" in str(path):
            # a remote URL (or options for one): fsspec's own transaction, as Lightning does
            return super().save_checkpoint(checkpoint, path, storage_options)
        import torch

        write_atomic(Path(path), lambda f: torch.save(checkpoint, f))
