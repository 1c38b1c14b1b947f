"""The vocabulary cache: one folder per built tokenizer, written whole or not at all.

    <cache_dir>/<label>-<key16>/   tokenizer.json + tokenizer_config.json (AutoTokenizer loads it)
                                   meta.json (sha256 of tokenizer.json, sizes, the spec)
    <cache_dir>/<label>-<key16>.lock

A sweep's parallel jobs may build the same vocabulary at once: they serialise on an exclusive
`fcntl.flock` on the .lock file; the first builds into a temporary folder and renames it into
place (one `os.replace`, atomic on POSIX), the others then find it built. A folder whose
tokenizer.json does not match meta.json's sha256 or size (a truncated copy, a crash from an older
writer) is reported and rebuilt, never used. flock is advisory and local: on NFS shared between
hosts, give each host its own cache_dir.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from tokentune.atomic import fsync_tree, json_text, os_error, write_error

log = logging.getLogger(__name__)

TOKENIZER_FILE, META_FILE = "tokenizer.json", "meta.json"


class Corrupt(Exception):
    """A cache folder that must not be used."""


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock_path, "a")  # "a": create if absent, never truncate another's file
    except OSError as err:  # a read-only or full cache_dir: one line, not a traceback
        raise write_error(lock_path, err) from err
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wrap(backend: Tokenizer, kwargs: dict[str, Any]):
    """The transformers tokenizer around a `tokenizers` one; padding/truncation are per call."""
    from transformers import PreTrainedTokenizerFast

    backend.no_padding()
    backend.no_truncation()
    return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)


def load(folder: Path):
    """The tokenizer in `folder` with its meta; raises Corrupt unless every check passes."""
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        path = folder / TOKENIZER_FILE
        if sha256_file(path) != meta["sha256"]:
            raise Corrupt(f"{path.name} does not match the sha256 in {META_FILE}")
        backend = Tokenizer.from_file(str(path))
        size = backend.get_vocab_size(with_added_tokens=True)
        if size != meta["vocab_size"]:
            raise Corrupt(f"{size:,} tokens where {META_FILE} says {meta['vocab_size']:,}")
        return wrap(backend, meta["wrapper"]), meta
    except Corrupt:
        raise
    except Exception as e:  # OSError, JSON, missing keys, and tokenizers' plain Exception
        raise Corrupt(f"{type(e).__name__}: {e}") from e


def load_valid(folder: Path):
    """(tokenizer, meta), or None when absent or corrupt (then it is logged and left to rebuild)."""
    if not folder.exists():
        return None
    try:
        return load(folder)
    except Corrupt as e:
        log.warning("vocab cache %s is corrupt (%s); rebuilding it", folder, e)
        return None


def write(folder: Path, tokenizer, meta: dict[str, Any]) -> None:
    """Save into a temporary sibling folder, fsync it, then rename it into place (call under
    `locked`). A write the OS refuses (a full disk) raises UserError naming the folder."""
    tmp: Path | None = None
    trash: Path | None = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        tokenizer.save_pretrained(tmp)
        meta = {**meta, "sha256": sha256_file(tmp / TOKENIZER_FILE)}
        (tmp / META_FILE).write_text(json_text(meta, indent=2, sort_keys=True), encoding="utf-8")
        fsync_tree(tmp)
        if folder.exists():  # a corrupt one: move it aside so the rename below cannot fail
            trash = folder.with_name(f".{folder.name}.corrupt-{os.getpid()}")
            os.replace(folder, trash)
        os.replace(tmp, folder)
    except Exception as err:
        refused = os_error(err)  # a full disk, a read-only cache_dir
        if refused is None:
            raise
        raise write_error(folder, refused) from err
    finally:
        for leftover in (tmp, trash):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


def load_or_make(folder: Path, make: Callable[[], tuple[Any, dict[str, Any]]]):
    """(tokenizer, meta, built): the cached folder if valid, else make() it and write it."""
    with locked(folder.with_name(folder.name + ".lock")):
        found = load_valid(folder)
        if found is not None:
            return (*found, False)
        tokenizer, meta = make()
        write(folder, tokenizer, meta)
        # read back what was written: the first run uses exactly what every later run will
        return (*load(folder), True)
