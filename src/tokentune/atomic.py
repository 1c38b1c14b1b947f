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
import os
import tempfile
from pathlib import Path
from typing import IO, Callable, Optional, Union

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

