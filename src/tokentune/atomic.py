"""Write a file so that readers see the old content or the whole new one, never a part.

Every file tokentune writes goes through `write_atomic` (checkpoints too, through
run/checkpoint_io.py), or is written inside a temporary folder that is renamed into place
(exports, the vocabulary cache; `fsync_tree` first). The temporary file is made in the
destination's own folder: on the same filesystem, so the final rename is a rename, never a copy
that a full disk could cut short under the final name. It is flushed and fsynced before the
rename, and the folder after it, so that a crash just after leaves the new file, not an empty one.

A write that fails (a full disk, a read-only or foreign folder) removes its temporary file,
leaves the previous version in place and raises a UserError that names the path and the OS error.
Only the standard library here: the config and the CLI import this module at start-up.
"""
from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Optional, Union

from tokentune.errors import UserError


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is set back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_error(path: Union[str, Path], err: OSError) -> UserError:
    """`cannot write <path>: [Errno 28] No space left on device; <what to do>`."""
    reason = f"[Errno {err.errno}] {err.strerror}" if err.errno and err.strerror else str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        advice = "free space or choose another paths.output_dir / paths.cache_dir"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        advice = "make the folder writable or choose another paths.output_dir / paths.cache_dir"
    elif err.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST):
        advice = "a file or folder is in the way: move it, or choose another paths.output_dir / paths.cache_dir"
    else:
        advice = "check the disk, or choose another paths.output_dir / paths.cache_dir"
    return UserError(f"cannot write {path}: {reason}; {advice}")


def os_error(err: BaseException) -> Optional[OSError]:
    """The OSError behind `err`: itself, or the one a library's own error was raised while
    handling (torch.save writing to a file object turns its OSError into a RuntimeError)."""
    seen = 0
    while err is not None and seen < 5:
        if isinstance(err, OSError):
            return err
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def fsync_dir(folder: Union[str, Path]) -> None:
    """Make a rename in `folder` durable (where the filesystem allows a folder to be fsynced)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # e.g. EINVAL: the filesystem does not sync folders
        pass
    finally:
        os.close(fd)


def fsync_tree(folder: Union[str, Path]) -> None:
    """fsync every file under `folder` and the folders themselves (before renaming it into place)."""
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(root)


def write_atomic(path: Path, content: Union[str, Callable[[IO[bytes]], None]]) -> None:
    """Write `content` (text, or a function writing to a binary file) to a temporary file beside
    `path`, fsync it, then rename it over `path` (atomic on POSIX). Raises UserError (see
    `write_error`) when the OS refuses the write; the previous `path`, if any, stays as it was."""
    path = Path(path)
    tmp: Optional[str] = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, str):
                f.write(content.encode("utf-8"))
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())  # the data on the disk before the name points at it
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
        tmp = None
    except Exception as err:
        refused = os_error(err)
        if refused is None:
            raise
        raise write_error(path, refused) from err
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    fsync_dir(path.parent)


def _finite(obj: Any, where: tuple, reasons: dict[str, str], default: Optional[Callable]) -> Any:
    """`obj` with every non-finite float replaced by None, its place noted in `reasons`."""
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        reasons["/".join(where)] = "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
        return None
    if isinstance(obj, dict):
        return {k: _finite(v, where + (str(k),), reasons, default) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v, where + (str(i),), reasons, default) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (str, int, bool)) or default is None:
        return obj
    return _finite(default(obj), where, reasons, None)  # e.g. a tensor or numpy number as float


def json_text(obj: Any, *, indent: Optional[int] = None, sort_keys: bool = False,
              default: Optional[Callable] = None, ensure_ascii: bool = True) -> str:
    """Strict JSON (no NaN or Infinity, which most JSON readers refuse): a non-finite number is
    written as null, with the reason beside it in a top-level "non_finite" object keyed by its
    path, e.g. {"validation": {"val/loss": null}, "non_finite": {"validation/val/loss": "nan"}}."""
    reasons: dict[str, str] = {}
    clean = _finite(obj, (), reasons, default)
    if reasons and isinstance(clean, dict):
        clean = {**clean, "non_finite": {**(clean.get("non_finite") or {}), **reasons}}
    return json.dumps(clean, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii,
                      allow_nan=False)


def write_json(path: Path, obj: Any, *, indent: Optional[int] = 2, sort_keys: bool = True,
               default: Optional[Callable] = None) -> None:
    """`obj` as strict JSON (`json_text`), written atomically."""
    write_atomic(path, json_text(obj, indent=indent, sort_keys=sort_keys, default=default) + "\n")
