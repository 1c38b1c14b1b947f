"""Faults, injected: what tokentune did not write is never replaced, a full disk or a read-only
folder costs nothing that was already on disk, a signal stops a fit where it resumes from, and a
loss or metric that is not a number stops the run or is written as null (issue 26 items 1-4);
each bad input of items 5-6 stops train.py with one line and leaves every file as it was.

Each test names, in its docstring, the protection it checks; each failed with that protection
removed by hand (the commit messages say how)."""
from __future__ import annotations

import errno
import io
import json
import logging
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from conftest import ROOT, run_cli, run_overrides
from test_train import Record, metrics_rows
from tokentune import atomic
from tokentune.config import compose as compose_train, validate
from tokentune.errors import ConfigError, UserError
from tokentune.run.export import export_checkpoint
from tokentune.run.fit import fit

FULL = "[Errno 28] No space left on device; free space or choose another paths.output_dir / paths.cache_dir"


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under `root`, by relative path, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not str(p.relative_to(root)).startswith(skip)}


def temporaries(root: Path) -> list[str]:
    """What write_atomic or an export left behind: files and folders named .<name>.<random>."""
    return [str(p.relative_to(root)) for p in root.rglob(".*") if p.name != ".hydra"]


class _Filling:
    """A file on a disk with `room` bytes left: the write that does not fit stores what fits and
    fails with ENOSPC, as write(2) does."""

    def __init__(self, f, room: int):
        self._f, self._room = f, room

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self._room:
            self._f.write(data[:self._room])
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


class DiskFull:
    """Once armed, the next file written through tokentune.atomic.write_atomic whose name
    contains `name` runs out of disk after `room` bytes. `before` is the snapshot of `root` just
    before that write began: what must be on disk, byte for byte, after the failure."""

    def __init__(self, monkeypatch, name: str, root: Path, room: int = 1000, armed: bool = True):
        self.name, self.root, self.room, self.armed = name, root, room, armed
        self.hits: list[str] = []
        self.before: dict[str, bytes] | None = None
        self._paths: dict[int, str] = {}
        real_mkstemp, real_fdopen = tempfile.mkstemp, os.fdopen

        def mkstemp(*args, **kwargs):
            fd, path = real_mkstemp(*args, **kwargs)
            self._paths[fd] = path
            return fd, path

        def fdopen(fd, *args, **kwargs):
            f = real_fdopen(fd, *args, **kwargs)
            path = self._paths.pop(fd, None)
            if self.armed and path and self.name in Path(path).name:
                self.armed = False
                self.before = {k: v for k, v in snapshot(self.root).items()
                               if self.root / k != Path(path)}  # not the new, empty temporary
                self.hits.append(path)
                return _Filling(f, self.room)
            return f

        monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(atomic.os, "fdopen", fdopen)


# one short epoch: best.ckpt, last.ckpt (every 2 steps and at the end), model/, results.json
SHORT = ("model=bert_tiny", "trainer.max_epochs=1", "trainer.limit_train_batches=4",
         "trainer.limit_val_batches=1", "data.batch_size=8", "callbacks.every_n_train_steps=2")


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, cache_dir) -> Path:
    run_dir = tmp_path_factory.mktemp("short")
    fit(compose_train(run_overrides(cache_dir, run_dir) + list(SHORT)))
    return run_dir


def copy_run(run_dir: Path, to: Path) -> Path:
    shutil.copytree(run_dir, to)
    return to


def export_cfg(ckpt: Path, out: Path, cache_dir: Path, tmp_path: Path, overwrite: bool = False):
    return OmegaConf.create({"ckpt_path": str(ckpt), "out": str(out), "overwrite": overwrite,
                             "data_dir": None, "accelerator": "cpu",
                             "paths": {"cache_dir": str(cache_dir), "output_dir": str(tmp_path / "x")}})


# -- 1. nothing is replaced that tokentune did not write for this run ---------------------------
def test_export_refuses_a_folder_it_did_not_write(short_run, cache_dir, tmp_path):
    """run/export.py check_target: a folder that is not empty and holds no tokentune.json is
    never replaced, with or without overwrite=true (breakage: check_target returning at once,
    here and in export_model: the user's folder was deleted)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("a user's work")
    before = snapshot(tmp_path)
    ckpt = short_run / "checkpoints" / "best.ckpt"
    out = run_cli("-m", "tokentune.cli_export", f"ckpt_path={ckpt}", f"out={mine}",
                  f"paths.cache_dir={cache_dir}", f"hydra.run.dir={tmp_path / 'export_run'}")
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines() == [
        f"error: out={mine} is not empty; choose another folder or pass overwrite=true (which "
        f"replaces only an earlier export, a folder with tokentune.json)"]
    with pytest.raises(UserError, match=re.escape(f"out={mine} is not empty and is not a tokentune "
                                                  f"export (it has no tokentune.json); choose another folder")):
        export_checkpoint(export_cfg(ckpt, mine, cache_dir, tmp_path, overwrite=True))
    assert snapshot(tmp_path, skip=("export_run",)) == before and not temporaries(tmp_path)


def test_an_earlier_export_is_replaced_only_with_overwrite(short_run, cache_dir, tmp_path):
    """overwrite=false refuses an earlier export too; overwrite=true replaces it whole (breakage:
    overwrite ignored: the earlier export was replaced without it)."""
    earlier = shutil.copytree(short_run / "model", tmp_path / "earlier")
    (earlier / "stale.txt").write_text("from the earlier export")
    before = snapshot(earlier)
    ckpt = short_run / "checkpoints" / "last.ckpt"
    with pytest.raises(UserError, match=re.escape(f"out={earlier} is not empty; choose another folder "
                                                  "or pass overwrite=true (it holds an earlier export")):
        export_checkpoint(export_cfg(ckpt, earlier, cache_dir, tmp_path))
    assert snapshot(earlier) == before
    export_checkpoint(export_cfg(ckpt, earlier, cache_dir, tmp_path, overwrite=True))
    assert (earlier / "tokentune.json").is_file() and not (earlier / "stale.txt").exists()
    assert not temporaries(tmp_path)


def test_a_fit_refuses_a_model_folder_it_did_not_write_before_writing_anything(compose, tmp_path):
    """run/fit.py check_model_dir, before the run dir is touched (breakage: the check removed:
    the fit trained, then its export replaced the user's folder)."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "notes.txt").write_text("not a model")
    before = snapshot(tmp_path)
    with pytest.raises(UserError) as err:
        fit(compose(*SHORT))
    assert str(err.value) == (f"{tmp_path / 'model'} is not empty and is not a tokentune export (it has "
                              "no tokentune.json); the run would replace it with its model: move it "
                              "away, or pass export=false")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("overrides, named", [
    (("model=gpt2_tiny",), "model.family ('bert' → 'gpt2'), model.name ('bert_tiny' → 'gpt2_tiny')"),
    (("finetune=lora",), "finetune.method ('full' → 'lora')"),
    (("tokenizer=bpe8k",), "tokenizer.kind ('pretrained' → 'bpe'), tokenizer.name ('pretrained' → 'bpe8k')"),
    (("task=shakespeare", "task.data_dir=/nowhere"), "task.format ('tsv' → 'text'), task.hub_dataset (None → 'karpathy/tiny_shakespeare'), task.kind ("),
    (("model.config.num_hidden_layers=1",), "model.config.num_hidden_layers (2 → 1)"),
], ids=["model", "method", "vocabulary", "task", "model_config"])
def test_a_resume_of_another_run_is_refused_before_anything_is_written(short_run, compose, tmp_path,
                                                                       overrides, named):
    """run/resume_check.py, called by fit() before it writes config.yaml or the vocabulary report
    (breakage: the call removed: Lightning failed later, after config.yaml was rewritten)."""
    ckpt = short_run / "checkpoints" / "last.ckpt"
    before = snapshot(short_run)
    with pytest.raises(UserError) as err:
        fit(compose(*SHORT, *overrides, f"ckpt_path={ckpt}"))
    message = str(err.value)
    assert message.startswith(f"ckpt_path: {ckpt} is a checkpoint of another run than this config: ")
    assert named in message and "\n" not in message
    assert message.endswith("resume it with the model, method, vocabulary and task it was trained "
                            "with (its run's config.yaml), or start a new run")
    assert snapshot(short_run) == before and not list(tmp_path.iterdir())


def test_changed_settings_resume_only_when_allowed_and_are_reported(short_run, compose, tmp_path):
    """Optimisation keys: refused, then with resume.allow_changes=true listed in results.json;
    paths, logger and progress bar are free (breakage: allow_changes ignored, i.e. changes never
    refused: the first fit ran; and `resume_changes` not written: the last assert failed)."""
    run = copy_run(short_run, tmp_path / "run")
    ckpt = run / "checkpoints" / "last.ckpt"
    before = snapshot(run)
    changed = ("optimizer.lr=1e-3", "data.batch_size=4", "logger=none", "callbacks.progress_bar=tqdm")
    with pytest.raises(UserError) as err:
        fit(compose(*SHORT, *changed, f"ckpt_path={ckpt}", run_dir=tmp_path / "elsewhere"))
    assert str(err.value) == (f"ckpt_path: {ckpt} was trained with other settings: data.batch_size "
                              "(8 → 4), optimizer.lr (5e-05 → 0.001); resume with the checkpoint's "
                              "values, or pass resume.allow_changes=true to continue with these")
    assert snapshot(run) == before and not (tmp_path / "elsewhere").exists()
    results = fit(compose(*SHORT, *changed, "resume.allow_changes=true", f"ckpt_path={ckpt}",
                          run_dir=tmp_path / "elsewhere"))
    expected = {"data.batch_size": [8, 4], "optimizer.lr": [5e-5, 1e-3]}
    assert results["resume_changes"] == expected
    assert json.loads((run / "results.json").read_text())["resume_changes"] == expected
    # the run's own model/ (an earlier export) was replaced by the resumed run's
    assert (run / "model" / "tokentune.json").is_file() and not temporaries(run)


# -- 2. atomic on every filesystem ---------------------------------------------------------------
def test_write_atomic_fsyncs_then_renames_and_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    """write_atomic: the data is fsynced before the rename; ENOSPC mid-write leaves the old file,
    no temporary, and one line (breakage: no fsync: the order assert failed; no cleanup: a
    .results.json.* file stayed; no UserError: a bare OSError)."""
    path = tmp_path / "results.json"
    atomic.write_atomic(path, "old")
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                        real_fsync(fd))[1])
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (calls.append(("replace", str(a))), real_replace(a, b))[1])
    atomic.write_atomic(path, "new")
    (tmp_name,) = {name for op, name in calls if op == "replace"}
    assert calls.index(("fsync", tmp_name)) < calls.index(("replace", tmp_name))
    assert path.read_text() == "new"

    def half(f):
        f.write(b"half of it")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(UserError) as err:
        atomic.write_atomic(path, half)
    assert str(err.value) == f"cannot write {path}: {FULL}"
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


class ArmAt(pl.Callback):
    """Keeps the bytes `path` holds just before the batch that would make `step` optimizer steps,
    and arms `fault` (if any) there."""

    def __init__(self, fault: DiskFull | None, step: int, path: Path):
        self.fault, self.step, self.path, self.kept = fault, step, path, None

    def on_train_batch_start(self, trainer, *args):
        if trainer.global_step == self.step:
            self.kept = self.path.read_bytes()
            if self.fault is not None:
                self.fault.armed = True


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_previous_one(compose, tmp_path, monkeypatch):
    """AtomicCheckpointIO (run/checkpoint_io.py, passed in run/trainer.py): checkpoints go through
    write_atomic (breakage: the plugin left out: Lightning's own writer saved step 8 over step 4,
    the fault never reached, the fit ended normally)."""
    last = tmp_path / "checkpoints" / "last.ckpt"
    fault = DiskFull(monkeypatch, "last.ckpt", tmp_path, room=100_000, armed=False)
    arm = ArmAt(fault, 5, last)
    with pytest.raises(UserError) as err:
        fit(compose("model=bert_tiny", "trainer.max_steps=12", "data.batch_size=8",
                    "callbacks.every_n_train_steps=4"), extra_callbacks=[arm])
    assert str(err.value) == f"cannot write {last}: {FULL}"
    assert fault.hits and last.read_bytes() == arm.kept  # the step-4 checkpoint, whole
    assert torch.load(last, weights_only=True)["global_step"] == 4
    assert snapshot(tmp_path) == fault.before and not temporaries(tmp_path)


@pytest.mark.parametrize("name", ["results.json", "validation-", "metrics.csv"],
                         ids=["results", "data_cache", "metrics_csv"])
def test_a_full_disk_while_writing_results_a_cache_or_logs_keeps_what_was_there(short_run, compose, tmp_path,
                                                                               monkeypatch, name):
    """results.json (a resumed, finished run's: the earlier one stays), the tokenized-data cache
    (a fresh cache_dir: the train split's file, written first, stays) and metrics.csv (written
    whole by run/resume.py's writer, not appended to) (breakage: write_atomic without its cleanup:
    the .results.json.* / .validation-*.pt temporary stayed; without the UserError: an OSError
    traceback; Lightning's appending writer back: metrics.csv never reached write_atomic)."""
    run = copy_run(short_run, tmp_path / "run")
    cache, new = tmp_path / "cache", tmp_path / "new"
    skip: tuple[str, ...] = ()
    if name == "results.json":
        overrides, root, path = (f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",), run, run / "results.json"
    elif name == "metrics.csv":
        # Lightning's failure handling flushes the logs once more, the disk having room again
        overrides, root, path, skip = (), new, new / "logs" / "metrics.csv", ("logs",)
    else:
        overrides, root = (f"paths.cache_dir={cache}",), tmp_path
    fault = DiskFull(monkeypatch, name, root, room=10)
    earlier = snapshot(run)
    with pytest.raises(UserError) as err:
        fit(compose(*SHORT, *overrides, run_dir=new))
    (hit,) = fault.hits
    if name == "validation-":
        path = Path(hit).parent / Path(hit).name[1:].rsplit(".", 1)[0]  # .<name>.<random> → <name>
        assert path.parent == cache / "data" / "demo"
        assert [p.name.split("-")[0] for p in path.parent.iterdir()] == ["train"]
    assert str(err.value) == f"cannot write {path}: {FULL}"
    assert snapshot(root, skip) == {k: v for k, v in fault.before.items() if not k.startswith(skip or "\0")}
    assert not temporaries(tmp_path)
    if name == "results.json":
        assert (run / "results.json").read_bytes() == earlier["results.json"]


def test_a_read_only_run_folder_stops_with_one_line_and_changes_nothing(compose, tmp_path, monkeypatch):
    """write_atomic's OSError → UserError, for the first file a run writes (config.yaml). As root
    chmod does not stop a write, so there the folder refuses with EROFS, as a read-only mount
    would (breakage: config.yaml written with write_text: PermissionError / OSError traceback)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "notes.txt").write_text("kept")
    before = snapshot(ro)
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):  # root: the mode does not apply
            real = tempfile.mkstemp

            def read_only(*args, dir=None, **kwargs):
                if dir is not None and Path(dir).resolve().is_relative_to(ro.resolve()):
                    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
                return real(*args, dir=dir, **kwargs)

            monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
            reason = f"[Errno {errno.EROFS}] {os.strerror(errno.EROFS)}"
        else:
            reason = f"[Errno {errno.EACCES}] {os.strerror(errno.EACCES)}"
        with pytest.raises(UserError) as err:
            fit(compose(*SHORT, run_dir=ro))
    finally:
        ro.chmod(0o755)
    assert str(err.value) == (f"cannot write {ro / 'config.yaml'}: {reason}; make the folder writable "
                              "or choose another paths.output_dir / paths.cache_dir")
    assert snapshot(ro) == before and not temporaries(ro)


def test_every_strategy_saves_checkpoints_through_the_atomic_writer(compose, tmp_path):
    """plugins=[AtomicCheckpointIO()] reaches the one-device strategy and DDP's; FSDP's "full"
    state dict saves through Strategy.save_checkpoint → checkpoint_io (breakage: plugins left out
    of build_trainer: TorchCheckpointIO)."""
    from pytorch_lightning.strategies import FSDPStrategy, Strategy

    from tokentune.run.checkpoint_io import AtomicCheckpointIO
    from tokentune.run.distributed import WatchedFSDPStrategy, build_strategy
    from tokentune.run.trainer import build_trainer

    for overrides in ((), ("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                           "trainer.precision=32-true")):
        trainer = build_trainer(validate(compose("model=bert_tiny", *overrides)), tmp_path)
        assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO), overrides
    fsdp = build_strategy(validate(compose("model=bert_tiny", "trainer=fsdp")).trainer, "bert")
    assert isinstance(fsdp, WatchedFSDPStrategy) and fsdp._state_dict_type == "full"
    # FSDPStrategy.save_checkpoint hands a full state dict to the base class, which writes it
    # through checkpoint_io on global rank 0
    import inspect

    assert "super().save_checkpoint(checkpoint=checkpoint, filepath=path)" in inspect.getsource(FSDPStrategy.save_checkpoint)
    assert "self.checkpoint_io.save_checkpoint(" in inspect.getsource(Strategy.save_checkpoint)


# -- 3. signals ----------------------------------------------------------------------------------
# 2 epochs of 51 batches, last.ckpt every 10 steps: the signal is sent once the step-10 checkpoint
# is there, so it lands between steps 10 and 102 (dropout on: a resume must restore the RNGs)
SIGNALLED = ("model=bert_tiny", "trainer.max_epochs=2", "optimizer.lr=2e-3", "data.batch_size=8",
             "callbacks.every_n_train_steps=10", "trainer.log_every_n_steps=5")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cache_dir):
    run_dir = tmp_path_factory.mktemp("whole")
    record = Record()
    results = fit(compose_train(run_overrides(cache_dir, run_dir) + list(SIGNALLED)), extra_callbacks=[record])
    return results, record, metrics_rows(run_dir)


def signalled_run(tmp_path: Path, cache_dir: Path, signum: int, extra: tuple[str, ...],
                  group: bool) -> tuple[subprocess.CompletedProcess, Path]:
    """`python train.py` as a user runs it, sent `signum` once it has written last.ckpt: to the
    process alone (kill, a scheduler), or to its whole process group (Ctrl-C in a terminal, scancel),
    DataLoader workers and DDP ranks included."""
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *run_overrides(cache_dir, run_dir),
                                 *SIGNALLED, *extra], cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                                stdout=out, stderr=err, text=True, start_new_session=True)
        try:
            while proc.poll() is None and not last.exists():
                time.sleep(0.02)
            assert proc.poll() is None, "the run ended before it was signalled"
            if group:
                os.killpg(proc.pid, signum)
            else:
                proc.send_signal(signum)
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, (tmp_path / "stdout").read_text(),
                                       (tmp_path / "stderr").read_text())
    return done, last


DDP = ("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true",
       "data.num_workers=0")


@pytest.mark.parametrize("signum, status, extra, group", [
    (signal.SIGTERM, 143, (), False),
    (signal.SIGINT, 130, ("data.num_workers=2",), True),  # Ctrl-C: the loader workers get it too
    (signal.SIGTERM, 143, ("data.num_workers=2",), True),  # scancel: the same
    (signal.SIGTERM, 143, DDP, False),  # to rank 0 alone: the ranks agree on the step
], ids=["SIGTERM", "SIGINT_to_the_group_with_loader_workers", "SIGTERM_to_the_group_with_loader_workers",
        "SIGTERM_to_DDP_rank_0"])
def test_a_signal_saves_the_step_and_the_resumed_fit_matches_an_uninterrupted_one(
        uninterrupted, compose, tmp_path, cache_dir, signum, status, extra, group):
    """run/guards.py Interruption: last.ckpt at the next optimizer step, one line, 128 + signal
    (breakage: the callback left out of fit: SIGTERM ended with Lightning's SystemExit, status 0,
    no line, last.ckpt at step 10; SIGINT with Lightning's KeyboardInterrupt handling, status 1;
    the loader workers' _worker_start left out: a worker killed by the group's SIGTERM crashed the
    run ("DataLoader worker ... is killed by signal: Terminated"), nothing saved; under
    DDP without the all-reduce of _agreed: rank 0 saved alone, in a collective, and hung)."""
    done, last = signalled_run(tmp_path, cache_dir, signum, extra, group)
    assert done.returncode == status, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    # the run, and the command that resumes it: the same overrides, quoted for the shell, and ckpt_path
    command = shlex.join(["python", "train.py", *run_overrides(cache_dir, tmp_path / "run"), *SIGNALLED, *extra,
                          f"ckpt_path={last}"])
    found = re.fullmatch(rf"interrupted at step (\d+) of run {re.escape(str(last.parent.parent))}; "
                         rf"resume with ckpt_path={re.escape(str(last))}: (.*)", lines[0])
    assert found and found.group(2) == command, lines[0]
    step = int(found.group(1))
    assert 10 < step < 102
    assert torch.load(last, weights_only=True)["global_step"] == step
    saved = next(v for k, v in torch.load(last, weights_only=True)["callbacks"].items() if "ResumeState" in k)
    assert not temporaries(last.parent)
    if extra:
        return
    whole, whole_record, whole_rows = uninterrupted
    record = Record()
    resumed = fit(compose(*SIGNALLED, f"ckpt_path={last}", run_dir=tmp_path / "elsewhere"), extra_callbacks=[record])
    assert record.batches == 102 - step and resumed["steps"] == whole["steps"] == 102
    different = [k for k, v in record.weights.items() if not torch.equal(v, whole_record.weights[k])]
    assert record.weights.keys() == whole_record.weights.keys() and not different, different[:3]
    assert metrics_rows(tmp_path / "run") == whole_rows
    assert resumed["validation"] == whole["validation"]
    # the wall time of both commands: the interrupted one's up to the checkpoint resumed from
    assert resumed["wall_time_parts_s"][:1] == saved["wall_time_parts_s"] and len(resumed["wall_time_parts_s"]) == 2
    assert resumed["wall_time_s"] == sum(resumed["wall_time_parts_s"]) and min(resumed["wall_time_parts_s"]) > 0
    assert whole["wall_time_parts_s"] == [whole["wall_time_s"]]


def test_a_resume_continues_its_runs_folder_and_adds_no_hydra_files_to_it(tmp_path):
    from tokentune.config import compose as compose_train

    run = tmp_path / "outputs" / "demo" / "minilm-full" / "2026-12-01_10-00-00"
    resumed = compose_train([f"ckpt_path={run}/checkpoints/last.ckpt"], keep_hydra=True).hydra
    assert (resumed.run.dir, resumed.output_subdir) == (str(run), None)
    fresh = compose_train(["ckpt_path=elsewhere/last.ckpt"], keep_hydra=True).hydra  # not a run's checkpoint
    assert fresh.run.dir.startswith("outputs/demo/minilm-full/") and fresh.output_subdir == ".hydra"


class SendAt(pl.Callback):
    def __init__(self, step: int, signum: int):
        self.step, self.signum = step, signum
        self.handlers: dict = {}

    def on_train_batch_start(self, trainer, *args):
        if trainer.global_step == self.step:
            self.handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
            os.kill(os.getpid(), self.signum)


def test_slurm_requeue_signal_still_saves_and_requeues(compose, tmp_path, monkeypatch):
    """Under SLURM, Lightning's SIGUSR1 handler (auto_requeue) stays: it saves an hpc checkpoint,
    through the atomic writer, and calls scontrol requeue; the fit goes on; SIGTERM is ours
    (breakage: _take_over replacing the SIGUSR1 handler too: the requeue call was missing)."""
    from pytorch_lightning.trainer.connectors import signal_connector

    for key in list(os.environ):
        if key.startswith("SLURM_"):
            monkeypatch.delenv(key)
    for key, value in dict(SLURM_NTASKS=1, SLURM_NTASKS_PER_NODE=1, SLURM_NNODES=1, SLURM_PROCID=0,
                           SLURM_LOCALID=0, SLURM_NODEID=0, SLURM_JOB_NAME="train", SLURM_JOB_ID=7,
                           SLURM_NODELIST="node1").items():
        monkeypatch.setenv(key, str(value))
    requeued = []
    monkeypatch.setattr(signal_connector, "call", lambda cmd, **kw: requeued.append(cmd) or 0)
    send = SendAt(3, signal.SIGUSR1)
    results = fit(compose("model=bert_tiny", "trainer.max_steps=6", "data.batch_size=8"), extra_callbacks=[send])
    assert requeued == [["scontrol", "requeue", "7"]]
    assert results["steps"] == 6  # the requeue signal does not stop the fit
    assert torch.load(tmp_path / "hpc_ckpt_1.ckpt", weights_only=True)["global_step"] == 3
    assert not temporaries(tmp_path)
    assert getattr(send.handlers[signal.SIGTERM], "__name__", None) == "_received"
    assert isinstance(send.handlers[signal.SIGUSR1], signal_connector._HandlersCompose)


# -- 4. numbers that are not numbers --------------------------------------------------------------
class Losses(pl.Callback):
    """Each step's training loss (read back: tests may wait), and the step a fit stopped at."""

    def __init__(self):
        self.losses: list[float] = []
        self.stopped_at = None

    def on_train_batch_end(self, trainer, pl_module, outputs, *args):
        self.losses.append(outputs["loss"].item())

    def on_exception(self, trainer, pl_module, exception):
        self.stopped_at = trainer.global_step


def test_a_non_finite_loss_stops_the_fit_within_log_every_n_steps(compose):
    """FiniteLoss (run/guards.py), read every trainer.log_every_n_steps steps (breakage: the
    callback left out of build_callbacks: 40 steps of nan, results written). That it adds no
    read-back at the other steps: tests/run/test_speed.py::test_training_reads_values_back_only_at_log_and_redraw_steps
    (breakage: check() at every step: that test failed)."""
    seen = Losses()
    with pytest.raises(UserError) as err:
        fit(compose("model=bert_tiny", "optimizer.lr=1e30", "optimizer.warmup_ratio=0", "trainer.max_steps=40",
                    "data.batch_size=8", "trainer.log_every_n_steps=5"), extra_callbacks=[seen])
    bad = next(i for i, loss in enumerate(seen.losses) if not math.isfinite(loss))
    assert all(math.isfinite(loss) for loss in seen.losses[:bad])
    kind = "nan" if math.isnan(seen.losses[bad]) else ("inf" if seen.losses[bad] > 0 else "-inf")
    assert str(err.value) == (f"training loss is not finite ({kind}) at step {bad}; lower optimizer.lr "
                              "(1e+30?) or look for extreme values in the training data")
    # stopped at the first read-back after it: the next multiple of log_every_n_steps
    assert bad < seen.stopped_at <= bad + 5 and seen.stopped_at % 5 == 0


class PoisonAt(pl.Callback):
    """Sets the embeddings to nan just before the batch that would make `step` optimizer steps."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, *args):
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


def test_a_non_finite_model_never_replaces_the_last_checkpoint(compose, tmp_path):
    """FiniteLoss.on_save_checkpoint: the step-8 checkpoint, after a nan at step 6, is refused
    before it is written (breakage: on_save_checkpoint removed: last.ckpt became the nan model)."""
    last = tmp_path / "checkpoints" / "last.ckpt"
    arm = ArmAt(None, 5, last)  # keeps the step-4 bytes
    with pytest.raises(UserError, match=r"^training loss is not finite \(nan\) at step 6; "):
        fit(compose("model=bert_tiny", "trainer.max_steps=20", "data.batch_size=8", "callbacks.every_n_train_steps=4",
                    "trainer.log_every_n_steps=50"), extra_callbacks=[PoisonAt(6), arm])
    assert last.read_bytes() == arm.kept and torch.load(last, weights_only=True)["global_step"] == 4


def test_an_infinite_learning_rate_is_refused_at_composition(compose):
    """config.py OptimizerConfig: finite and > 0 (breakage: the isfinite check removed: lr=inf
    composed, and trained nan)."""
    for value, message in (("inf", "must be a finite number, got inf"), ("-inf", "must be > 0, got -inf"),
                           ("nan", "must be > 0, got nan")):
        with pytest.raises(ConfigError) as err:
            validate(compose(f"optimizer.lr={value}"))
        assert str(err.value) == f"optimizer.lr: {message}"
    out = run_cli(str(ROOT / "train.py"), "optimizer.lr=inf", "model=bert_tiny")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "error: optimizer.lr: must be a finite number, got inf"], out.stderr[-2000:]


def test_the_json_tokentune_writes_is_strict(tmp_path):
    """tokentune.atomic.json_text, under results.json, metrics.json, the vocabulary report,
    tokentune.json and predictions.jsonl: null for nan/inf, the reason beside it (breakage:
    json.dumps with its default allow_nan: NaN in the file, which the strict parse refused)."""
    from tokentune.run.results import write_json_atomic

    path = tmp_path / "results.json"
    write_json_atomic({"validation": {"val/loss": float("nan"), "val/accuracy": 0.5},
                       "test": {"test/loss": torch.tensor(float("inf"))}, "steps": 3}, path)

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    saved = json.loads(path.read_text(), parse_constant=refuse)
    assert saved == {"validation": {"val/loss": None, "val/accuracy": 0.5}, "test": {"test/loss": None},
                     "steps": 3, "non_finite": {"validation/val/loss": "nan", "test/test/loss": "inf"}}
    json.dumps(saved, allow_nan=False)
    assert atomic.json_text([float("-inf")]) == "[null]"


# -- 5, 6. bad input stops each entry point in one line, before it writes anything ---------------
def _no_gpu_line() -> str:
    build = "a CPU-only build of torch" if torch.version.cuda is None else "no CUDA device visible"
    return (f"error: trainer.accelerator=gpu, but torch {torch.__version__} finds no GPU here ({build}); "
            "use trainer=cpu, or run on a machine with a CUDA GPU")


def _fault(case: str, tmp_path: Path, run: Path, cache: Path) -> tuple[list[str], dict, str]:
    """(overrides, environment, the one stderr line: exact, or a regex when it starts with ^)."""
    if case == "no_gpu":
        return ["trainer=gpu"], {"CUDA_VISIBLE_DEVICES": ""}, _no_gpu_line()
    if case == "vocab_size":
        return ["tokenizer=bpe8k", "tokenizer.vocab_size=2000000000"], {}, (
            "error: tokenizer.vocab_size: 2,000,000,000 is above 1,048,576, the most tokentune builds (the "
            "trainers reserve memory for every requested token up front); a corpus yields far fewer (it is "
            "an upper bound): lower it")
    if case == "plus_key":
        return ["+data.batchsize=4"], {}, ("error: data.batchsize: no such setting; data has batch_size, "
                                           "eval_batch_size, max_length, group_by_length, num_workers, "
                                           "pin_memory, max_train_examples, buckets, packing, max_empty_share")
    if case == "folder_as_data_file":
        data = tmp_path / "data"
        (data / "train.tsv").mkdir(parents=True)
        return [f"task.data_dir={data}"], {}, (f"error: {data / 'train.tsv'}: a folder, not a data file; "
                                               "point task.splits.train.path at a file")
    if case == "folder_as_checkpoint":
        return [f"ckpt_path={run / 'checkpoints'}"], {}, (
            f"error: ckpt_path: {run / 'checkpoints'} is a folder; point ckpt_path at a checkpoint a tokentune "
            "run wrote (<run>/checkpoints/best.ckpt or last.ckpt)")
    if case == "folder_as_results":
        (run / "results.json").unlink()
        (run / "results.json").mkdir()
        return [], {}, (f"error: {run / 'results.json'} is a folder; the run writes its results.json there: "
                        "move the folder away, or choose another paths.output_dir")
    if case == "cache_dir_is_a_file":  # found once the data is read: config.yaml is rewritten by then
        blocked = tmp_path / "cache_file"
        blocked.write_text("not a folder")
        return [f"paths.cache_dir={blocked}"], {}, (
            rf"^error: cannot write {re.escape(str(blocked))}/data/demo/train-\w+\.pt: \[Errno 20\] Not a "
            r"directory; a file or folder is in the way: move it, or choose another paths.output_dir / "
            r"paths.cache_dir$")
    if case == "empty_split":
        data = tmp_path / "data"
        data.mkdir()
        shutil.copy(ROOT / "src" / "tokentune" / "data" / "demo" / "dev.tsv", data)
        (data / "train.tsv").write_text("sentence\tlabel\n\t0\n\t1\n")
        return [f"task.data_dir={data}"], {}, (f"error: task.splits.train ({data / 'train.tsv'}): all 2 "
                                               "examples are empty; are task.text_columns the columns that "
                                               "hold the text?")
    assert case == "hub_unreachable"
    # nothing listens on port 9: every connection is refused
    return ["model.pretrained=tokentune-tests/absent"], {
        "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")}, (
        "error: model.pretrained: could not load 'tokentune-tests/absent' (We couldn't connect to "
        "'http://127.0.0.1:9' to load the files, and couldn't find them in the cached files.). Without "
        "internet access, use a local folder (e.g. model=minilm, or model.pretrained=/path/to/model) and "
        "set HF_HUB_OFFLINE=1 to use what is already in the Hugging Face cache")


FAULTS = ["no_gpu", "vocab_size", "plus_key", "folder_as_data_file", "folder_as_checkpoint",
          "folder_as_results", "cache_dir_is_a_file", "empty_split", "hub_unreachable"]


@pytest.mark.parametrize("case", FAULTS)
def test_each_fault_stops_train_py_with_one_line_and_changes_no_file(short_run, cache_dir, tmp_path, case):
    """`python train.py` over a finished run's folder (and the session's cache), with one bad
    input each: exit 2, one line on stderr, no traceback, every file there before byte-identical
    after (breakages, one per case: check_accelerator removed: Lightning's MisconfigurationException
    traceback; MAX_VOCAB_SIZE removed: the BPE trainer's allocation of 142 GB aborted the process;
    unknown_keys removed: the run trained and rewrote the folder; refuse_folder in read_split and
    read_checkpoint's folder check removed: "file not found" / "not found"; check_run_files removed: the fit trained,
    then failed at results.json; write_error's EISDIR/ENOTDIR advice removed: "check the disk";
    check_empty removed: the fit trained on blank sentences; fail_at_first_connection_error removed:
    five "Retrying in Ns" warnings, 23 s of back-off, before the line)."""
    run = copy_run(short_run, tmp_path / "run")
    overrides, env, line = _fault(case, tmp_path, run, cache_dir)
    before, cached = snapshot(tmp_path), snapshot(cache_dir)
    into = tmp_path / "new" if case == "cache_dir_is_a_file" else run
    out = run_cli(str(ROOT / "train.py"), *run_overrides(cache_dir, into), f"hydra.run.dir={into}",
                  *SHORT, *overrides, env=env)
    assert out.returncode == 2, out.stderr[-3000:]
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert re.fullmatch(line, lines[0]) if line.startswith("^") else lines[0] == line
    # Hydra's own files (.hydra/, its log) are written before tokentune runs
    assert snapshot(tmp_path, skip=("run/.hydra", "run/cli.log", "new")) == before
    assert snapshot(cache_dir) == cached


class _Built(Exception):
    """Raised by a stand-in for load_backbone: the test has seen what it was asked."""


def test_the_load_report_is_not_shown_where_a_checkpoint_fills_the_model(short_run, compose, tmp_path,
                                                                          monkeypatch, cache_dir):
    """load_backbone(filled=True) hides transformers' load report ("classifier.weight MISSING ...
    newly initialized"), which a resume, evaluate, predict and export then fill from the
    checkpoint; a new fit still shows it (breakage: TaskModule's from_checkpoint not passed on:
    the resume's filled was False; load_report_hidden a no-op: the record was logged)."""
    from tokentune.model import backbone

    cfg = validate(compose())  # MiniLM: a pretrained encoder without a classifier
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("transformers.modeling_utils")
    logger.addHandler(handler)
    try:
        backbone.load_backbone(cfg.model, cfg.task, pad_token_id=0, seed=0)
        shown = [r.getMessage() for r in records]
        backbone.load_backbone(cfg.model, cfg.task, pad_token_id=0, seed=0, filled=True)
    finally:
        logger.removeHandler(handler)
    assert len(shown) == 1 and "LOAD REPORT" in shown[0] and "classifier.weight" in shown[0]
    assert len(records) == 1  # nothing more from the filled load

    asked: list[bool] = []

    def stand_in(*args, filled: bool = False, **kwargs):
        asked.append(filled)
        raise _Built

    monkeypatch.setattr(backbone, "load_backbone", stand_in)
    run = copy_run(short_run, tmp_path / "run")
    with pytest.raises(_Built):
        fit(compose(*SHORT, run_dir=tmp_path / "new"))
    with pytest.raises(_Built):
        fit(compose(*SHORT, f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"))
    with pytest.raises(_Built):
        export_checkpoint(export_cfg(run / "checkpoints" / "best.ckpt", tmp_path / "out", cache_dir, tmp_path))
    assert asked == [False, True, True]
