"""Optuna sweeps (`-m hparams_search=<file>`, hydra/sweeper=tokentune_optuna).

Every sweep here trains bert_tiny for 2 steps per trial, on SQLite or on a real PostgreSQL server
that the `postgres` fixture starts on loopback for the session.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from conftest import ROOT, run_cli

TINY = ["model=bert_tiny", "trainer.max_steps=2", "trainer.limit_val_batches=1", "test=false",
        "callbacks.checkpoint=false", "callbacks.progress_bar=none", "logger=none",
        "hydra.sweeper.seed=0"]
ADVICE_DB = ("check that the database server is running and reachable and that the URL is right, "
             "e.g. postgresql+psycopg://user:password@host:5432/dbname")


def sweep_args(cache_dir: Path, sweep_dir: Path, *extra: str, search: str = "demo_lora") -> list:
    return ["train.py", "-m", f"hparams_search={search}", *TINY, f"paths.cache_dir={cache_dir}",
            f"hydra.sweep.dir={sweep_dir}", *extra]


def start_sweep(args: list, log: Path) -> subprocess.Popen:
    """A sweep in the background, its output in `log` (a pipe could fill and stall it)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True,
                                stdout=out, stderr=subprocess.STDOUT)


def sqlite_study(sweep_dir: Path, name: str = "demo_lora") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir}/optuna.db")


def wait_until_stale(sweep_dir: Path, trial: optuna.trial.FrozenTrial, grace_period: int,
                     within: float = 300) -> None:
    """Return once the sweep's storage holds `trial`'s last heartbeat older than `grace_period`:
    from then on, a restarted sweep's first look fails it. The check is the one
    `fail_stale_trials` makes (private: the public call would fail the trial itself), on the
    database's clock, which stamped the beats, not this machine's."""
    from hydra_plugins.tokentune_optuna_sweeper._storage import open_storage

    storage = open_storage(f"sqlite:///{sweep_dir}/optuna.db", 1, grace_period)
    study_id = storage.get_study_id_from_name("demo_lora")
    deadline = time.monotonic() + within  # a guard against a trial that never goes stale
    while trial._trial_id not in storage._get_stale_trial_ids(study_id):
        assert time.monotonic() < deadline, f"trial {trial.number} still fresh {within} s after the kill"
        time.sleep(0.2)


def run_results(trial: optuna.trial.FrozenTrial) -> dict:
    return json.loads((Path(trial.user_attrs["run_dir"]) / "results.json").read_text())


def ran_config(trial: optuna.trial.FrozenTrial) -> dict:
    return yaml.safe_load((Path(trial.user_attrs["run_dir"]) / "config.yaml").read_text())


def search_file(tmp_path: Path, name: str, sweeper: dict) -> Path:
    """A config dir (for --config-dir) with hparams_search/<name>.yaml."""
    folder = tmp_path / "conf"
    (folder / "hparams_search").mkdir(parents=True, exist_ok=True)
    body = {"defaults": [{"override /hydra/sweeper": "tokentune_optuna"}],
            "hydra": {"sweeper": sweeper}}
    (folder / "hparams_search" / f"{name}.yaml").write_text("# @package _global_\n"
                                                            + yaml.safe_dump(body))
    return folder


# -- a sweep on SQLite ------------------------------------------------------------------------

@pytest.mark.slow
def test_sqlite_sweep_records_every_trial_with_its_runs_metric(tmp_path, cache_dir):
    sweep = tmp_path / "sweep"
    proc = run_cli(*sweep_args(cache_dir, sweep, "hydra.sweeper.n_trials=3",
                               "hydra.sweeper.n_jobs=2", "task.monitor=loss", "finetune.r=12"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "optuna: finetune.r is set on the command line: not searched" in proc.stdout

    lr = yaml.safe_load((ROOT / "conf/hparams_search/demo_lora.yaml").read_text())
    low, high = (lr["hydra"]["sweeper"]["params"]["optimizer.lr"][k] for k in ("low", "high"))
    study = sqlite_study(sweep)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE  # loss: lower is better
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2]
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for t in trials:
        assert t.user_attrs["run_dir"] == str(sweep / f"trial_{t.number}")
        assert t.value == run_results(t)["validation"]["val/loss"]
        assert list(t.params) == ["optimizer.lr"] and low <= t.params["optimizer.lr"] <= high
        config = ran_config(t)
        assert (config["optimizer"]["lr"], config["finetune"]["r"]) == (t.params["optimizer.lr"], 12)

    best = min(trials, key=lambda t: t.value)
    summary = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert summary == {
        "study_name": "demo_lora", "storage": f"sqlite:///{sweep}/optuna.db",
        "direction": "minimize", "metric": "val/loss", "n_trials": 3, "trials": {"complete": 3},
        "best_trial": best.number, "best_value": best.value, "best_params": best.params,
        "best_run_dir": str(sweep / f"trial_{best.number}")}
    progress = [line for line in proc.stdout.splitlines() if line.startswith("optuna: trial")]
    assert [line.split(":")[1] for line in progress] == [
        " trial 0 (1/3 done)", " trial 1 (2/3 done)", " trial 2 (3/3 done)"]
    assert f"optuna: best val/loss={best.value:.4f} in trial {best.number}" in proc.stdout


@pytest.mark.slow
def test_a_failing_trial_is_recorded_failed_and_the_sweep_goes_on(tmp_path, cache_dir):
    # two of the grid's points fail the run's own check (max_length < 2): in any order, a trial
    # runs after a failed one
    conf = search_file(tmp_path, "grid_fail", {
        "study_name": "grid_fail", "sampler": "grid",
        "params": {"data.max_length": {"type": "categorical", "choices": [1, 0, 16]}}})
    sweep = tmp_path / "sweep"
    proc = run_cli(*sweep_args(cache_dir, sweep, "--config-dir", str(conf), search="grid_fail"))
    assert proc.returncode == 0, proc.stderr[-3000:]

    trials = sqlite_study(sweep, "grid_fail").get_trials()
    assert len(trials) == 3
    by_length = {t.params["data.max_length"]: t for t in trials}
    for length in (0, 1):
        failed = by_length[length]
        message = f"data.max_length: must be at least 2, got {length}"
        assert failed.state == TrialState.FAIL
        assert failed.user_attrs["error"] == message
        assert f"optuna: trial {failed.number} ({failed.number + 1}/3 done): FAILED ({message})" \
            in proc.stdout
    done = by_length[16]
    assert done.state == TrialState.COMPLETE
    assert done.value == run_results(done)["validation"]["val/accuracy"]
    summary = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert summary["trials"] == {"fail": 2, "complete": 1}
    assert summary["best_trial"] == done.number


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # heartbeats
def test_a_killed_sweep_resumes_from_its_storage(tmp_path, cache_dir):
    sweep = tmp_path / "sweep"
    grace = 2
    beats = ["hydra.sweeper.heartbeat_interval=1", f"hydra.sweeper.grace_period={grace}"]
    first = start_sweep(sweep_args(cache_dir, sweep, "hydra.sweeper.n_trials=2", *beats),
                        tmp_path / "first.log")
    try:  # kill it while its second trial trains
        deadline = time.monotonic() + 600  # a guard against a hang, not a speed requirement
        while time.monotonic() < deadline and first.poll() is None:
            if (sweep / "trial_1").is_dir():  # made as trial 1's job starts, after trial 0 is told
                break
            time.sleep(0.05)  # trial 1 takes a second or more: its first imports are done
        assert first.poll() is None and (sweep / "trial_1").is_dir(), \
            (tmp_path / "first.log").read_text()[-3000:]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    done_before, killed = sqlite_study(sweep).get_trials()
    assert (done_before.state, killed.state) == (TrialState.COMPLETE, TrialState.RUNNING)
    # a restart within grace_period would still count the killed trial as running (and the
    # sweep ends one trial short: see the next test); past it, the first look fails it
    wait_until_stale(sweep, killed, grace)

    proc = run_cli(*sweep_args(cache_dir, sweep, "hydra.sweeper.n_trials=3", *beats))
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = sqlite_study(sweep).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[0] == done_before  # untouched: params, value, times, attributes
    assert "error" not in trials[1].user_attrs  # failed by its missing heartbeat, not by its run
    assert trials[2].value == run_results(trials[2])["validation"]["val/accuracy"]
    assert "optuna: study 'demo_lora' in " in proc.stdout
    assert ": maximize val/accuracy with tpe, 1 of 3 trials done" in proc.stdout
    assert "optuna: trial 2 (3/3 done)" in proc.stdout


def test_the_summary_names_trials_still_running(tmp_path, capsys):
    from hydra_plugins.tokentune_optuna_sweeper import _report

    study = optuna.create_study(direction="maximize")
    study.tell(study.ask(), 0.75)
    study.ask()  # another worker's, or a killed worker's still within its grace period
    _report.summarize(study, "sqlite:///optuna.db", "val/accuracy", 3, tmp_path)
    summary = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert summary["trials"] == {"complete": 1, "running": 1}
    out = capsys.readouterr().out
    assert "optuna: best val/accuracy=0.7500 in trial 0" in out
    assert "optuna: 1 trial(s) still running count toward n_trials" in out



def demo_lora_space() -> dict:
    from hydra_plugins.tokentune_optuna_sweeper._search_space import parse_space

    conf = yaml.safe_load((ROOT / "conf/hparams_search/demo_lora.yaml").read_text())
    return parse_space(conf["hydra"]["sweeper"]["params"])


@pytest.mark.slow
def test_random_sampler_and_a_direction_against_the_metrics_own(tmp_path, cache_dir):
    # loss is minimised unless told otherwise: `direction=maximize` must win over the metric
    sweep = tmp_path / "sweep"
    proc = run_cli(*sweep_args(cache_dir, sweep, "hydra.sweeper.n_trials=2", "task.monitor=loss",
                               "hydra.sweeper.sampler=random", "hydra.sweeper.direction=maximize"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ": maximize val/loss with random, 0 of 2 trials done" in proc.stdout

    study = sqlite_study(sweep)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for t in trials:
        assert t.value == run_results(t)["validation"]["val/loss"]
    assert trials[0].value != trials[1].value  # so that the direction picks one
    best = max(trials, key=lambda t: t.value)
    assert study.best_trial.number == best.number
    summary = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert (summary["direction"], summary["best_trial"]) == ("maximize", best.number)
    # the points are those Optuna's RandomSampler draws with the sweep's seed (hydra.sweeper.seed=0)
    reference = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space = demo_lora_space()
    assert [t.params for t in trials] == [reference.ask(space).params for _ in range(2)]


@pytest.mark.parametrize("name, sampler", [
    ("tpe", optuna.samplers.TPESampler), ("random", optuna.samplers.RandomSampler),
    ("grid", optuna.samplers.GridSampler)])
def test_the_sampler_setting_picks_optunas_sampler(name, sampler):
    from hydra_plugins.tokentune_optuna_sweeper._samplers import make_sampler
    from hydra_plugins.tokentune_optuna_sweeper._search_space import parse_space

    space = demo_lora_space() if name != "grid" else parse_space(
        {"finetune.r": {"type": "categorical", "choices": [4, 8, 16]},
         "finetune.dropout": {"type": "categorical", "choices": [0.0, 0.1]}})
    made, size = make_sampler(name, 0, space)
    assert type(made) is sampler or (name == "grid" and isinstance(made, sampler))
    assert size == (6 if name == "grid" else None)  # the grid caps n_trials at its size


@pytest.mark.slow
def test_a_sweep_in_which_no_trial_completes_exits_2(tmp_path, cache_dir):
    conf = search_file(tmp_path, "all_fail", {
        "study_name": "all_fail", "sampler": "grid",
        "params": {"data.max_length": {"type": "categorical", "choices": [0, 1]}}})
    sweep = tmp_path / "sweep"
    proc = run_cli(*sweep_args(cache_dir, sweep, "--config-dir", str(conf), search="all_fail"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    trials = sqlite_study(sweep, "all_fail").get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 2
    first = trials[0].params["data.max_length"]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: no trial of study 'all_fail' completed; the first failure: "
        f"data.max_length: must be at least 2, got {first}")
    summary = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert summary["trials"] == {"fail": 2} and "best_trial" not in summary
    assert "optuna: best" not in proc.stdout


def test_a_sweep_on_the_command_line_is_refused(tmp_path, cache_dir):
    sweep = tmp_path / "sweep"
    proc = run_cli(*sweep_args(cache_dir, sweep, "seed=1,2"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: seed: a sweep on the command line; with hydra/sweeper=tokentune_optuna put it in "
        "hydra.sweeper.params"]
    assert not sweep.exists()  # refused before any study or trial


@pytest.mark.parametrize("direction, message", [
    ("minimize", "study 'demo_lora' in sqlite:///{sweep}/optuna.db was created to maximize, not "
                 "minimize; choose another study_name or storage"),
    ("up", "'up' is not minimize or maximize (or null: from task.monitor)"),
])
def test_a_direction_the_study_cannot_take_is_one_line(tmp_path, cache_dir, direction, message):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    optuna.create_study(study_name="demo_lora", storage=f"sqlite:///{sweep}/optuna.db",
                        direction="maximize")  # an earlier sweep's study, on val/accuracy
    proc = run_cli(*sweep_args(cache_dir, sweep, f"hydra.sweeper.direction={direction}"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: hydra.sweeper.direction: {message.format(sweep=sweep)}"]
    assert sqlite_study(sweep).get_trials() == []

# -- a real PostgreSQL server -----------------------------------------------------------------

@dataclass
class Postgres:
    port: int
    user: str = "tokentune"
    password: str = "s3cret"

    def url(self, database: str, password: str | None = None) -> str:
        return (f"postgresql+psycopg://{self.user}:{password or self.password}"
                f"@127.0.0.1:{self.port}/{database}")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user,
                             password=self.password, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return found or (str(candidates[0]) if candidates else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """initdb + pg_ctl start on 127.0.0.1 (password auth), stopped at the end of the session.

    Skipped only where no PostgreSQL binaries exist (.ci/run installs them); a server that does
    not start fails the tests. PostgreSQL refuses to run as root: root runs it as `postgres`."""
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    server = Postgres(port=_free_port())
    base = Path(tempfile.mkdtemp(prefix="tokentune-pg-"))
    (base / "pwfile").write_text(server.password + "\n")
    as_user: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres" if _has_user("postgres") else "nobody")
        for path in (base, base / "pwfile"):
            os.chown(path, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", account.pw_name, "--"]
    data, log = base / "data", base / "server.log"

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)

    made = run(initdb, "-D", str(data), "-U", server.user, f"--pwfile={base / 'pwfile'}",
               "--auth-local=trust", "--auth-host=scram-sha-256", "--no-locale", "-E", "UTF8",
               "--no-sync")
    if made.returncode != 0:
        pytest.fail(f"initdb failed: {made.stderr[-2000:]}")
    started = run(pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60",
                  "-o", f"-F -h 127.0.0.1 -p {server.port} -k {base}", "start")
    try:
        if started.returncode != 0:
            pytest.fail(f"PostgreSQL did not start: {started.stderr}\n"
                        f"{log.read_text()[-2000:] if log.exists() else ''}")
        yield server
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.mark.slow
def test_two_workers_share_one_study_on_postgresql(tmp_path, cache_dir, postgres):
    # a fresh database: the two workers also race to create Optuna's tables
    url = postgres.create_database("two_workers")
    args = ["hydra.sweeper.n_trials=4", f"hydra.sweeper.storage={url}", "hydra.sweeper.seed=null"]
    workers = [start_sweep(sweep_args(cache_dir, tmp_path / name, *args), tmp_path / f"{name}.log")
               for name in "ab"]
    outputs = []
    for worker, name in zip(workers, "ab"):
        worker.wait(timeout=300)
        outputs.append((tmp_path / f"{name}.log").read_text())
        assert worker.returncode == 0, outputs[-1][-3000:]

    trials = optuna.load_study(study_name="demo_lora", storage=url).get_trials()
    # both workers count the study's trials before asking for one: the last slot may go twice
    assert 4 <= len(trials) <= 5
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    for t in trials:
        assert t.value == run_results(t)["validation"]["val/accuracy"]
    by_worker = {name: sum(t.user_attrs["run_dir"].startswith(str(tmp_path / name)) for t in trials)
                 for name in "ab"}
    assert by_worker["a"] >= 1 and by_worker["b"] >= 1
    assert by_worker["a"] + by_worker["b"] == len(trials)
    masked = url.replace(postgres.password, "***")
    assert all(f"optuna: study 'demo_lora' in {masked}:" in out for out in outputs)


def test_a_wrong_password_is_one_line_with_the_password_masked(tmp_path, cache_dir, postgres):
    url = postgres.url("postgres", password="wrong-pw")
    proc = run_cli(*sweep_args(cache_dir, tmp_path / "sweep", f"hydra.sweeper.storage={url}"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: hydra.sweeper.storage: cannot open {url.replace('wrong-pw', '***')} "
        f'(connection failed: connection to server at "127.0.0.1", port {postgres.port} failed: '
        f'FATAL:  password authentication failed for user "tokentune"); {ADVICE_DB}')
    assert "wrong-pw" not in proc.stdout + proc.stderr


# -- bad input: one line, exit 2, before any trial ---------------------------------------------

@pytest.mark.parametrize("storage, message", [
    ("postgresql+psycopg://u:secret@127.0.0.1:1/db",
     'cannot open postgresql+psycopg://u:***@127.0.0.1:1/db (connection failed: connection to '
     'server at "127.0.0.1", port 1 failed: Connection refused); ' + ADVICE_DB),
    ("sqlite:////nonexistent/folder/optuna.db",
     "cannot open sqlite:////nonexistent/folder/optuna.db (unable to open database file); "
     "check that its folder exists and is writable"),
])
def test_an_unreachable_storage_is_one_line(tmp_path, cache_dir, storage, message):
    proc = run_cli(*sweep_args(cache_dir, tmp_path / "sweep", f"hydra.sweeper.storage={storage}"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: hydra.sweeper.storage: {message}"]
    assert not (tmp_path / "sweep" / "trial_0").exists()


@pytest.mark.parametrize("params, message", [
    ({"finetune.r": {"type": "int", "low": 32, "high": 4}},
     "hydra.sweeper.params.finetune.r: low (32) must be below high (4)"),
    ({"optimizer.lrr": {"type": "float", "low": 1e-5, "high": 1e-3}},
     "hydra.sweeper.params.optimizer.lrr: not a key of the config; check its spelling"),
    ({"data.batch_size": {"type": "float", "low": 8.0, "high": 32.0}},
     "hydra.sweeper.params.data.batch_size: data.batch_size=8.0 does not fit the config: "
     "Value '8.0' of type 'float' could not be converted to Integer"),
])
def test_an_invalid_search_space_is_one_line(tmp_path, cache_dir, params, message):
    conf = search_file(tmp_path, "bad", {"study_name": "bad", "params": params})
    proc = run_cli(*sweep_args(cache_dir, tmp_path / "sweep", "--config-dir", str(conf),
                               search="bad"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "sweep").exists()  # nothing stored, nothing run


@pytest.mark.parametrize("spec, message", [
    ({"type": "uniform", "low": 0, "high": 1}, "type 'uniform' is not float, int or categorical"),
    ({"type": "categorical", "choices": []}, "choices: give a non-empty list of values"),
    ({"type": "float", "low": 0.1, "high": 0.1}, "low (0.1) must be below high (0.1)"),
    ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "a log scale needs low > 0, got 0.0"),
    ({"type": "int", "low": 1, "high": 9, "lg": True},
     "unknown field 'lg' for type int; the fields are high, log, low, step, type"),
    ({"type": "int", "low": 1.5, "high": 9}, "low: 1.5 is not an int"),
    ({"type": "float", "high": 1.0}, "low: missing"),
    (0.001, "0.001 is not a mapping such as {type: float, low: 0.1, high: 1}"),
])
def test_search_space_errors_name_the_param(spec, message):
    from hydra_plugins.tokentune_optuna_sweeper._search_space import parse_space
    from tokentune.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_space({"optimizer.lr": spec})
    assert str(err.value) == f"hydra.sweeper.params.optimizer.lr: {message}"


def test_search_space_becomes_optuna_distributions_and_overrides():
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    from hydra_plugins.tokentune_optuna_sweeper._search_space import (as_override, grid_space,
                                                                      parse_space)
    from tokentune.errors import ConfigError

    space = parse_space({
        "optimizer.lr": {"type": "float", "low": "1e-5", "high": 1e-3, "log": True},
        "finetune.r": {"type": "int", "low": 4, "high": 32, "step": 4},
        "finetune": {"type": "categorical", "choices": ["lora", "prefix"]}})
    assert space == {"optimizer.lr": FloatDistribution(1e-5, 1e-3, log=True),
                     "finetune.r": IntDistribution(4, 32, step=4),
                     "finetune": CategoricalDistribution(["lora", "prefix"])}
    assert [as_override("optimizer.lr", 1e-05), as_override("finetune", "lora"),
            as_override("task.labels", "true"), as_override("x", None), as_override("y", False),
            as_override("name", "it's a b")] == [
        "optimizer.lr=1e-05", "finetune=lora", "task.labels='true'", "x=null", "y=false",
        "name='it\\'s a b'"]
    with pytest.raises(ConfigError, match="^hydra.sweeper.params.optimizer.lr: the grid sampler "
                                          "takes type: categorical only; list the values$"):
        grid_space(space)
