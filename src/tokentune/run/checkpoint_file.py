"""A checkpoint the user points at (`ckpt_path=`), read as data and checked before any heavy work.

A .ckpt file is a pickle, and unpickling can import and call anything the file names. tokentune
writes only tensors and plain containers (its config as a dict, RNG states as tensors, ints and
tuples), so every checkpoint is read with `torch.load(weights_only=True)`, which builds nothing
else. Lightning reads the file a second time to restore it; the callers pass `weights_only=True`
there too (and under FSDP, whose loader ignores that flag, this check has already run).
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from tokentune.errors import UserError

# torch.save has written zip archives since torch 1.6; Lightning always writes them
_ZIP_MAGIC = b"PK\x03\x04"
_WHERE = "point ckpt_path at a checkpoint a tokentune run wrote (<run>/checkpoints/best.ckpt or last.ckpt)"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at `path`, its tensors memory-mapped (cheap for any size).

    Raises UserError, with one line saying what is wrong and what to do, unless the file is a
    complete checkpoint of a tokentune run that holds only data.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        raise UserError(f"ckpt_path: {path} is a folder; {_WHERE}")
    if not path.is_file():
        raise UserError(f"ckpt_path: {path} not found")
    with path.open("rb") as f:
        head = f.read(len(_ZIP_MAGIC))
    # a zip's directory is its last record, so a file cut short starts right but has none
    if _ZIP_MAGIC.startswith(head) and (head != _ZIP_MAGIC or not zipfile.is_zipfile(path)):
        raise UserError(f"ckpt_path: {path} is truncated (its end is missing: an interrupted copy, "
                        "download or disk?); use a complete copy or another of the run's checkpoints "
                        "(checkpoints/best.ckpt, last.ckpt), or train again")
    if head != _ZIP_MAGIC:
        # never unpickled: a raw pickle (legacy torch.save, or a crafted one) stops here too
        raise _foreign(path, "not a zip archive as torch.save writes")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        code = _unsafe_globals(path)
        if code:
            raise UserError(f"ckpt_path: {path} is not a tokentune checkpoint: loading it would call "
                            f"{', '.join(code)}, so it was refused (tokentune checkpoints hold only "
                            "tensors and plain values)") from None
        raise _foreign(path, "torch cannot unpickle it") from None
    except Exception:  # torch's reader raises RuntimeError, ValueError, ... with multi-line messages
        raise _foreign(path, "a zip archive, but not one torch.save wrote, or a damaged one") from None
    if not _is_tokentune(checkpoint):
        raise _foreign(path, "a torch file without the state_dict and hyper_parameters.cfg "
                             "that tokentune's checkpoints hold")
    return checkpoint


def _is_tokentune(checkpoint: Any) -> bool:
    return (isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict)
            and isinstance(checkpoint.get("hyper_parameters"), dict)
            and isinstance(checkpoint["hyper_parameters"].get("cfg"), dict))


def _unsafe_globals(path: Path) -> list[str]:
    """What the pickle would import and call (read from its opcodes, nothing run); [] if unknown."""
    from torch.serialization import get_unsafe_globals_in_checkpoint

    try:
        return get_unsafe_globals_in_checkpoint(path)
    except Exception:  # a damaged pickle: reported as unreadable instead
        return []


def _foreign(path: Path, why: str) -> UserError:
    return UserError(f"ckpt_path: {path} is not a tokentune checkpoint ({why}); {_WHERE}")
