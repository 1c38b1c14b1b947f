"""trainer=ddp|fsdp: the same steps as one process with the global batch, one writer per run,
a dead worker ends the job with one clear line, and the SLURM / torchrun environments."""
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, run_cli
from distributed_runs import CPU, DDP2, one_and_two_processes
from tokentune.config import validate
from tokentune.errors import ConfigError, UserError
from tokentune.run.distributed import (LauncherWatch, WatchedDDPStrategy, WatchedFSDPStrategy,
                                       WatchedLauncher, WorkerWatch, build_strategy)
from tokentune.run.trainer import build_trainer


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one_process_with_the_global_batch(tmp_path, cache_dir):
    # 384 rows: the global batch of 16 divides them; a rate that moves the tiny model off chance in two epochs
    one, two, ddp = one_and_two_processes(cache_dir, tmp_path, ["trainer.max_epochs=2", "data.max_train_examples=384",
                                                                "optimizer.lr=6e-3"])
    assert one["steps"] == two["steps"] == 48  # 384 / 16 per step × 2 epochs
    # the comparison is between trained models: off chance (0.5, ln 2 = 0.693) on the balanced dev set
    assert one["validation"]["val/accuracy"] > 0.65 and one["validation"]["val/loss"] < 0.65
    assert two["validation"] == pytest.approx(one["validation"], rel=1e-5, abs=1e-6)
    # and the same final weights, to float rounding (the ranks' gradients are summed in another
    # order). Not the attention key biases: softmax ignores them, so their gradient is rounding
    # noise that Adam scales up to full-size steps (1.6e-4 apart here, while the rest stay < 5e-6)
    weights = [torch.load(tmp_path / run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
               for run in ("single", "ddp")]
    assert weights[0].keys() == weights[1].keys()
    compared = [k for k in weights[0] if not k.endswith("attention.self.key.bias")]
    assert len(compared) == len(weights[0]) - 2  # two layers
    for name in compared:
        torch.testing.assert_close(weights[1][name], weights[0][name], rtol=1e-4, atol=1e-5,
                                   msg=lambda m: f"{name}: {m}")
    # both ranks ran in one run dir; rank 0 alone wrote its files and printed the summary
    assert ddp.stdout.count("run: ") == 1
    assert (tmp_path / "ddp" / "train_ddp_process_1.log").is_file()
    saved = yaml.safe_load((tmp_path / "ddp" / "config.yaml").read_text())
    assert saved["trainer"]["strategy"] == "ddp" and saved["data"]["batch_size"] == 8


# A job whose watch works ends within seconds of a death; without it, the survivors would wait in
# their next collective until the process-group timeout. The bound on the end sits far from both,
# so that it tells the two apart on any machine, however loaded.
GROUP_TIMEOUT_S = 1800  # the default: what a user's job would wait
ENDS_WITHIN_S = 300


def _start_long_ddp_run(run_dir: Path, cache_dir: Path) -> subprocess.Popen:
    """A DDP run that would train for minutes; returns once both ranks are training."""
    cmd = [sys.executable, "train.py", *CPU, *DDP2, "data.batch_size=8", "trainer.max_epochs=50",
           "callbacks.every_n_train_steps=1", "logger=none", f"trainer.ddp_timeout_s={GROUP_TIMEOUT_S}",
           f"paths.cache_dir={cache_dir}", f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The event: rank 0 writes last.ckpt after the first step, whose gradients both ranks reduced.
    # The deadline only stops a run that hangs in start-up; it is not a speed requirement.
    deadline = time.monotonic() + 600
    while not (run_dir / "checkpoints" / "last.ckpt").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the DDP run did not start training: {proc.communicate()[1][-2000:]}")
        time.sleep(0.2)
    return proc


def _stderr_once_ended(proc: subprocess.Popen, *others: int) -> str:
    """The job's stderr once it has ended (its pipes closed) within ENDS_WITHIN_S; else the job
    and `others` (pids outside it) are killed and the test fails."""
    try:
        return proc.communicate(timeout=ENDS_WITHIN_S)[1]
    except subprocess.TimeoutExpired:
        for pid in (proc.pid, *others):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.communicate()
    pytest.fail(f"the DDP job still ran {ENDS_WITHIN_S} s after the kill: it waits for the "
                f"process-group timeout ({GROUP_TIMEOUT_S} s)")


def _worker_pid(launcher_pid: int) -> int:
    """The pid of the rank-1 process Lightning launched (it re-runs train.py with this job name)."""
    for d in Path("/proc").iterdir():
        try:
            if (d.name.isdigit() and f"PPid:\t{launcher_pid}\n" in (d / "status").read_text()
                    and b"train_ddp_process_1" in (d / "cmdline").read_bytes()):
                return int(d.name)
        except OSError:
            continue
    raise AssertionError("no rank-1 worker found")


@pytest.mark.slow
def test_a_killed_worker_ends_the_job_with_one_clear_line(tmp_path, cache_dir):
    proc = _start_long_ddp_run(tmp_path / "run", cache_dir)
    worker = _worker_pid(proc.pid)
    os.kill(worker, signal.SIGKILL)
    err = _stderr_once_ended(proc)
    assert proc.returncode == 1
    assert f"error: DDP worker rank 1 (pid {worker}) was killed by signal 9 (SIGKILL); " \
           "stopping all workers" in err.splitlines()
    assert "Traceback" not in err


@pytest.mark.slow
def test_a_killed_launcher_ends_its_workers(tmp_path, cache_dir):
    proc = _start_long_ddp_run(tmp_path / "run", cache_dir)
    worker = _worker_pid(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    err = _stderr_once_ended(proc, worker)  # the pipes close when the worker, which shares them, is gone
    assert not Path(f"/proc/{worker}").exists() or "zombie" in Path(f"/proc/{worker}/status").read_text()
    assert f"error: the DDP launcher (rank 0, pid {proc.pid}) is gone; stopping worker rank 1" \
        in err.splitlines()


# -- watches -------------------------------------------------------------------------------------
def test_worker_watch_names_the_rank_and_how_it_ended():
    alive, killed, failed = (subprocess.Popen(["sleep", s]) for s in ("30", "30", "0"))
    killed.kill()
    killed.wait()
    watch = WorkerWatch([alive, killed], first_rank=5)
    assert watch.failure() == (f"DDP worker rank 6 (pid {killed.pid}) was killed by signal 9 "
                               "(SIGKILL); stopping all workers")
    failed.wait()
    assert WorkerWatch([alive, failed], first_rank=1).failure() is None  # status 0: finished
    watch.disarm()  # Lightning stopping the workers itself after an error in rank 0
    assert watch.failure() is None
    watch.stop_others()
    assert alive.wait(timeout=5) == -signal.SIGKILL
    crashed = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    crashed.wait()
    assert "rank 1 (pid" in WorkerWatch([crashed], first_rank=1).failure()
    assert "exited with status 3" in WorkerWatch([crashed], first_rank=1).failure()


def test_launcher_watch_notices_the_launcher_is_gone():
    assert LauncherWatch(os.getppid(), rank=1, launcher_rank=0).failure() is None
    gone = LauncherWatch(os.getppid() + 100_000, rank=3, launcher_rank=2).failure()
    assert re.fullmatch(r"the DDP launcher \(rank 2, pid \d+\) is gone; stopping worker rank 3", gone)


# -- configs and strategies ----------------------------------------------------------------------
@pytest.mark.parametrize("option", ["ddp", "fsdp"])
def test_ddp_and_fsdp_configs_compose(compose, option):
    cfg = validate(compose(f"trainer={option}"))
    t = cfg.trainer
    assert (t.strategy, t.accelerator, t.devices, t.precision) == (option, "gpu", -1, "bf16-mixed")
    assert cfg.data.buckets == [16, 32, 64, 128]  # trainer=gpu's data settings come along


@pytest.mark.parametrize("overrides,message", [
    (("trainer=fsdp", "trainer.accelerator=cpu"), "trainer.strategy: fsdp shards over GPUs"),
    (("trainer.strategy=deepspeed",), "trainer.strategy: 'deepspeed' is not one of"),
    (("trainer.num_nodes=2",), "trainer.num_nodes: several nodes need trainer.strategy=ddp or fsdp"),
    (("trainer=ddp", "trainer.ddp_timeout_s=0"), "trainer.ddp_timeout_s: must be ≥ 1 second"),
])
def test_unsupported_strategy_settings_fail_with_the_key(compose, overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(compose(*overrides))


def test_the_ddp_trainer_carries_the_timeout_and_the_watched_launcher(compose, tmp_path):
    cfg = validate(compose(*DDP2, "trainer.ddp_timeout_s=60", "trainer.precision=32-true"))
    trainer = build_trainer(cfg, tmp_path)
    assert isinstance(trainer.strategy, WatchedDDPStrategy)
    assert trainer.strategy._timeout == timedelta(seconds=60)
    assert isinstance(trainer.strategy.launcher, WatchedLauncher)
    assert trainer.num_devices == 2 and trainer.world_size == 2


@pytest.mark.parametrize("family,block", [("bert", "BertLayer"), ("gpt2", "GPT2Block")])
def test_fsdp_wraps_the_family_blocks(compose, family, block):
    cfg = validate(compose("trainer=fsdp", f"model={family}_tiny"))
    strategy = build_strategy(cfg.trainer, cfg.model.family)
    assert isinstance(strategy, WatchedFSDPStrategy)
    assert block in {c.__name__ for c in strategy.kwargs["auto_wrap_policy"]._module_classes}
    assert strategy._state_dict_type == "full"  # checkpoints stay single files


@pytest.fixture
def cluster_env(monkeypatch):
    """Set a cluster's environment variables; Lightning's process-wide rank is restored after."""
    from lightning_utilities.core.rank_zero import rank_zero_only as utils_rank_zero_only
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    for fn in (rank_zero_only, utils_rank_zero_only):
        monkeypatch.setattr(fn, "rank", getattr(fn, "rank", 0))
    for key in list(os.environ):
        if key.startswith(("SLURM_", "TORCHELASTIC_")) or key in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
            monkeypatch.delenv(key)

    def _set(**env):
        for k, v in env.items():
            monkeypatch.setenv(k, str(v))
    return _set


@pytest.mark.parametrize("manager", ["slurm", "torchrun"])
def test_ranks_started_by_slurm_or_torchrun_reach_the_trainer(compose, tmp_path, cluster_env, manager):
    from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    if manager == "slurm":  # rank 9 of 2 nodes × 8 tasks, as srun starts them
        cluster_env(SLURM_NTASKS=16, SLURM_NTASKS_PER_NODE=8, SLURM_NNODES=2, SLURM_PROCID=9,
                    SLURM_LOCALID=1, SLURM_NODEID=1, SLURM_JOB_NAME="train", SLURM_JOB_ID=7,
                    SLURM_NODELIST="node[1-2]")
    else:  # torchrun --nnodes 2 --nproc-per-node 8: the second process of the second node
        cluster_env(RANK=9, LOCAL_RANK=1, GROUP_RANK=1, WORLD_SIZE=16, LOCAL_WORLD_SIZE=8,
                    TORCHELASTIC_RUN_ID="x", MASTER_ADDR="node1", MASTER_PORT=29500)
    cfg = validate(compose("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=8",
                           "trainer.num_nodes=2", "trainer.precision=32-true"))
    trainer = build_trainer(cfg, tmp_path)
    env = trainer.strategy.cluster_environment
    assert isinstance(env, SLURMEnvironment if manager == "slurm" else TorchElasticEnvironment)
    assert env.creates_processes_externally  # our launcher starts no workers of its own
    assert (trainer.global_rank, trainer.world_size, trainer.num_nodes) == (9, 16, 2)
    assert not trainer.is_global_zero  # so fit writes no run files on this rank


# -- SLURM -----------------------------------------------------------------------------------------
def _compose_with_hydra(*overrides: str):
    from tokentune.config import compose

    return compose(list(overrides), keep_hydra=True)


def _sbatch_script(cfg, monkeypatch, tmp_path) -> str:
    """The sbatch file hydra-submitit-launcher would submit for this config, without a cluster:
    the launcher's own code builds the executor; only the submission is intercepted."""
    import submitit
    from hydra.utils import instantiate

    fake_bin = tmp_path / "bin"  # submitit's SlurmExecutor insists on finding srun
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    executors = []
    monkeypatch.setattr(submitit.AutoExecutor, "map_array", lambda self, *a: executors.append(self) or [])
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    assert launcher.launch([["seed=1"]], initial_job_idx=0) == []
    return executors[0]._executor._make_submission_file_text("python -u -m submitit.core._submit x", "0")


def test_slurm_launcher_sizes_the_job_from_the_trainer(monkeypatch, tmp_path):
    cfg = _compose_with_hydra("hydra/launcher=slurm", "trainer=ddp", "trainer.num_nodes=2",
                              "trainer.devices=8", "hydra.launcher.partition=gpu",
                              "hydra.launcher.timeout_min=90", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    script = _sbatch_script(cfg, monkeypatch, tmp_path)
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --time=90", "#SBATCH --partition=gpu"):
        assert line in script.splitlines(), line
    assert script.index("export SLURM_KILL_BAD_EXIT=1") < script.index("srun ")


def test_slurm_launcher_needs_a_device_count(monkeypatch, tmp_path):
    cfg = _compose_with_hydra("hydra/launcher=slurm", "trainer=ddp", f"hydra.sweep.dir={tmp_path}")
    with pytest.raises(Exception) as err:  # trainer=ddp's devices=-1 means "every GPU I find"
        _sbatch_script(cfg, monkeypatch, tmp_path)
    cause = err.value
    while cause is not None and not isinstance(cause, UserError):
        cause = cause.__cause__ or cause.__context__
    assert "trainer.devices: a SLURM job needs the number of GPUs per node" in str(cause)


def test_the_slurm_launcher_is_offered_on_the_command_line():
    out = run_cli("train.py", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=8", "--cfg", "hydra")
    assert out.returncode == 0, out.stderr
    assert "SlurmLauncher" in out.stdout and "SLURM_KILL_BAD_EXIT" in out.stdout


# -- GPU -------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("option", ["ddp", "fsdp"])
def test_ddp_and_fsdp_train_on_the_gpus(tmp_path, cache_dir, option):
    out = run_cli("train.py", "model=bert_tiny", f"trainer={option}", "trainer.max_steps=4",
                  "trainer.limit_val_batches=2", "callbacks.progress_bar=none",
                  f"paths.cache_dir={cache_dir}", f"hydra.run.dir={tmp_path}", timeout=300)
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["steps"] == 4 and 0 <= results["validation"]["val/accuracy"] <= 1
