"""Checkpoints are data: every ckpt_path is read with weights_only=True, and a file that is cut
short, foreign or carries code stops the command with one line, before any model is built."""
from __future__ import annotations

import os
import pickle
import random
import re
import shutil
import zipfile
from pathlib import Path
from typing import Callable

import pytest
import torch
from omegaconf import OmegaConf

from conftest import run_cli, run_overrides
from tokentune.config import compose as compose_train, from_dict
from tokentune.errors import UserError
from tokentune.run.checkpoint_file import read_checkpoint
from tokentune.run.evaluate import evaluate, predict
from tokentune.run.fit import fit

# one short epoch, so that it validates: best.ckpt and last.ckpt
TINY = ("model=bert_tiny", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=2", "data.batch_size=16")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, cache_dir) -> Path:
    """The checkpoints folder of one real, short run."""
    run_dir = tmp_path_factory.mktemp("tiny_run")
    fit(compose_train(run_overrides(cache_dir, run_dir) + list(TINY)))
    return run_dir / "checkpoints"


@pytest.mark.parametrize("name", ["best.ckpt", "last.ckpt"])
def test_a_tokentune_checkpoint_is_plain_data(checkpoints, name):
    checkpoint = torch.load(checkpoints / name, weights_only=True)  # refuses all but plain data
    # everything a resume needs came through, the run's config among it
    assert {"state_dict", "optimizer_states", "lr_schedulers", "callbacks", "loops",
            "TaskDataModule"} <= set(checkpoint)
    assert set(checkpoint["callbacks"]["ResumeState"]) == {"rng", "logged_through", "wall_time_parts_s"}  # run/resume.py
    assert from_dict(checkpoint["hyper_parameters"]["cfg"]).model.name == "bert_tiny"
    assert read_checkpoint(checkpoints / name)["state_dict"].keys() == checkpoint["state_dict"].keys()


def test_every_read_of_a_checkpoint_is_weights_only(checkpoints, cache_dir, tmp_path, monkeypatch):
    """Ours and Lightning's (resume, evaluate, predict), whatever torch's default is."""
    reads: list[tuple[str, object]] = []
    load = torch.load

    def spy(f, *args, **kwargs):
        # Lightning passes an open fsspec file, which knows its path
        path = os.fspath(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "path", "")
        reads.append((str(path), kwargs.get("weights_only")))
        return load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    resumed = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    resumed.parent.mkdir(parents=True)
    shutil.copy(checkpoints / "last.ckpt", resumed)
    fit(compose_train(run_overrides(cache_dir, tmp_path / "resumed") + list(TINY)
                      + [f"ckpt_path={resumed}"]))
    best = checkpoints / "best.ckpt"
    for command in (evaluate, predict):
        command(OmegaConf.create({"ckpt_path": str(best), "split": "validation", "data_dir": None,
                                  "accelerator": "cpu", "paths": {"cache_dir": str(cache_dir),
                                                                  "output_dir": str(tmp_path / "out")}}))
    ckpt_reads = [(path, weights_only) for path, weights_only in reads if path.endswith(".ckpt")]
    assert sum(path == str(resumed) for path, _ in ckpt_reads) >= 2  # checked, then restored
    assert sum(path == str(best) for path, _ in ckpt_reads) >= 4  # the same, by evaluate and predict
    assert all(weights_only is True for _, weights_only in ckpt_reads), ckpt_reads


class _OpensAFile:
    """Unpickling it creates `path`: a checkpoint that carries code, harmless but visible."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _code_zip(path: Path, marker: Path) -> None:
    torch.save({"state_dict": {}, "payload": _OpensAFile(marker)}, path)


def _code_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"state_dict": {}, "payload": _OpensAFile(marker)}))


def test_the_crafted_checkpoints_do_run_code_when_unpickled(tmp_path):
    """Otherwise the absent marker files below would prove nothing."""
    zipped, raw = tmp_path / "zip.ckpt", tmp_path / "raw.ckpt"
    _code_zip(zipped, tmp_path / "zip-ran")
    _code_pickle(raw, tmp_path / "raw-ran")
    torch.load(zipped, weights_only=False)["payload"].close()
    pickle.loads(raw.read_bytes())["payload"].close()
    assert (tmp_path / "zip-ran").is_file() and (tmp_path / "raw-ran").is_file()


def _first_half(path: Path, real: Path, marker: Path) -> None:
    data = real.read_bytes()
    path.write_bytes(data[: len(data) // 2])


NOT_OURS = ("is not a tokentune checkpoint ({}); point ckpt_path at a checkpoint a tokentune run "
            "wrote (<run>/checkpoints/best.ckpt or last.ckpt)")
NOT_A_ZIP = NOT_OURS.format("not a zip archive as torch.save writes")
# kind → (write it, given the real last.ckpt and a marker path; what stderr says after the path)
BAD_FILES: dict[str, tuple[Callable[[Path, Path, Path], None], str]] = {
    "truncated": (_first_half,
                  "is truncated (its end is missing: an interrupted copy, download or disk?); use a "
                  "complete copy or another of the run's checkpoints (checkpoints/best.ckpt, last.ckpt), "
                  "or train again"),
    "foreign": (lambda path, real, marker: torch.save({"weights": torch.zeros(3)}, path),
                NOT_OURS.format("a torch file without the state_dict and hyper_parameters.cfg that "
                                "tokentune's checkpoints hold")),
    "text": (lambda path, real, marker: path.write_text("model: bert_tiny\nlr: 0.001\n"), NOT_A_ZIP),
    "binary": (lambda path, real, marker: path.write_bytes(b"\x00" + random.Random(0).randbytes(4096)),
               NOT_A_ZIP),
    "code": (lambda path, real, marker: _code_zip(path, marker),
             # pickle names `open` by its __module__: io on Python 3.11, _io on 3.12
             f"is not a tokentune checkpoint: loading it would call {open.__module__}.open, so it was refused "
             "(tokentune checkpoints hold only tensors and plain values)"),
    "code_raw_pickle": (lambda path, real, marker: _code_pickle(path, marker), NOT_A_ZIP),
}
# torch honours this only where a caller leaves weights_only out: set, it shows that none does
UNSAFE_DEFAULT = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
COMMANDS = {
    "evaluate": lambda ckpt, cache_dir, out: run_cli(
        "-m", "tokentune.cli_evaluate", f"ckpt_path={ckpt}", f"paths.cache_dir={cache_dir}",
        "accelerator=cpu", f"hydra.run.dir={out}", env=UNSAFE_DEFAULT),
    "resume": lambda ckpt, cache_dir, out: run_cli(
        "train.py", *run_overrides(cache_dir, out), *TINY, f"ckpt_path={ckpt}", f"hydra.run.dir={out}",
        env=UNSAFE_DEFAULT),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_checkpoint_stops_the_command_with_one_line(checkpoints, cache_dir, tmp_path, kind, command):
    write, says = BAD_FILES[kind]
    path, marker = tmp_path / f"{kind}.ckpt", tmp_path / "code-ran"
    write(path, checkpoints / "last.ckpt", marker)
    out = COMMANDS[command](path, cache_dir, tmp_path / "out")
    assert not marker.exists()  # the code in it did not run
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [f"error: ckpt_path: {path} {says}"]
    assert "Traceback" not in out.stdout + out.stderr
    assert not (tmp_path / "out" / "config.yaml").exists()  # stopped before the run began


def _plain_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not a checkpoint")


@pytest.mark.parametrize("make,says", [
    (lambda path: None, "not found"),
    (lambda path: path.write_bytes(b""), "is truncated"),
    (lambda path: path.write_bytes(b"PK"), "is truncated"),
    (_plain_zip, "is not a tokentune checkpoint (a zip archive, but not one torch.save wrote"),
], ids=["missing", "empty", "zip_magic_only", "other_zip"])
def test_read_checkpoint_names_what_is_wrong(tmp_path, make, says):
    path = tmp_path / "x.ckpt"
    make(path)
    with pytest.raises(UserError, match=f"^{re.escape(f'ckpt_path: {path} {says}')}"):
        read_checkpoint(path)
