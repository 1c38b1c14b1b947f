"""W&B: sweep runs grouped by their sweep, config + metrics + reports logged, no secret written."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import yaml

from conftest import run_cli

# Recognisable and shaped like a key (40 characters); offline mode keeps it off the network
SECRET = "tokentune-fake-wandb-key-0123456789abcde"
assert len(SECRET) == 40


def wandb_records(path: Path) -> list:
    """The records of an offline run's .wandb file: wandb's LevelDB-style log (a 7-byte file
    header, 32 KiB blocks, each chunk a 7-byte header: crc32, length, type 1 full/2 first/3 middle/
    4 last) of `Record` protobufs. Offline runs keep config and summary only there."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, block, pos, buf, out = path.read_bytes(), 32768, 7, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        buf += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            out.append(Record.FromString(buf))
            buf = b""
    return out


def of_type(records: list, kind: str) -> list:
    return [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]


def summary_of(records: list) -> dict:
    summary: dict = {}
    for record in of_type(records, "summary"):
        for item in record.update:  # wandb writes a key either whole or as its path
            summary[item.key or ".".join(item.nested_key)] = json.loads(item.value_json)
    return summary


@pytest.fixture(scope="module")
def wandb_sweep(tmp_path_factory, cache_dir):
    """A two-job multirun logging to wandb with an API key in the environment (offline forced)."""
    root = tmp_path_factory.mktemp("wandb")
    home = root / "wandb-home"  # wandb's own config/cache/data folders, scanned too
    env = {"WANDB_API_KEY": SECRET, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "WANDB_CONFIG_DIR": str(home / "config"), "WANDB_CACHE_DIR": str(home / "cache"),
           "WANDB_DATA_DIR": str(home / "data")}
    proc = run_cli("train.py", "-m", "model=bert_tiny", "logger=wandb", "seed=1,2",
                   "trainer.max_steps=2", "trainer.limit_val_batches=1",
                   f"hydra.sweep.dir={root / 'my-sweep'}", f"paths.cache_dir={cache_dir}", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.parent for p in (root / "my-sweep").glob("*/results.json"))
    assert len(jobs) == 2
    return root, jobs, proc


def job_records(job: Path) -> list:
    (run_file,) = job.glob("wandb/offline-run-*/run-*.wandb")
    return wandb_records(run_file)


@pytest.mark.slow
def test_sweep_runs_are_separate_wandb_runs_in_one_group(wandb_sweep):
    _, jobs, _ = wandb_sweep
    runs = [of_type(job_records(job), "run")[0] for job in jobs]
    assert [r.run_group for r in runs] == ["my-sweep", "my-sweep"]
    assert runs[0].run_id != runs[1].run_id  # job 2 did not log into job 1's run
    for job in jobs:
        assert yaml.safe_load((job / "config.yaml").read_text())["logger"]["group"] == "my-sweep"
        assert [e.exit_code for e in of_type(job_records(job), "exit")] == [0]


@pytest.mark.slow
def test_wandb_run_holds_the_config_metrics_and_reports(wandb_sweep):
    _, jobs, _ = wandb_sweep
    for job in jobs:
        records = job_records(job)
        config = {i.key: json.loads(i.value_json)
                  for c in of_type(records, "config") for i in c.update}
        assert config["cfg"] == yaml.safe_load((job / "config.yaml").read_text())
        summary = summary_of(records)
        results = json.loads((job / "results.json").read_text())
        assert summary["val/accuracy"] == results["validation"]["val/accuracy"]
        assert summary["parameters"] == results["parameters"]
        assert summary["vocabulary"] == json.loads((job / "vocab_report.json").read_text())


@pytest.mark.slow
def test_no_api_key_in_any_file_log_or_checkpoint(wandb_sweep):
    root, jobs, proc = wandb_sweep
    files = [p for p in root.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    # the scan covers what could leak: Hydra's dumps, logs, checkpoints, wandb's run files
    assert {"config.yaml", "hydra.yaml", "cli.log", "last.ckpt", "debug.log",
            "debug-internal.log", "results.json"} <= names
    assert sum(p.suffix == ".wandb" for p in files) == 2
    assert [p for p in files if SECRET.encode() in p.read_bytes()] == []
    assert SECRET not in proc.stdout + proc.stderr


def test_wandb_group_is_the_sweep_folder_in_a_multirun_only(compose):
    assert compose("logger=wandb").logger.group is None
    sweep = ["hydra.mode=MULTIRUN", "hydra.sweep.dir=multirun/lora-vs-adapter"]
    assert compose("logger=wandb", *sweep).logger.group == "lora-vs-adapter"
    assert compose("logger=wandb", *sweep, "logger.group=paper").logger.group == "paper"
