"""write_atomic: all or nothing, and the file mode a plain write would give."""
from __future__ import annotations

import os

import pytest

from tokentune.atomic import write_atomic


def test_replaces_whole_and_uses_the_umask_mode(tmp_path):
    path = tmp_path / "results.json"
    write_atomic(path, "old")
    old_umask = os.umask(0o022)
    try:
        write_atomic(path, lambda f: f.write(b"new"))
    finally:
        os.umask(old_umask)
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == 0o644  # mkstemp alone would leave 0600
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.json"
    write_atomic(path, "old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
