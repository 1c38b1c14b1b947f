"""Installs are reproducible and the installed package works: the lock agrees with pyproject.toml,
the venv runs exactly the locked versions, and a wheel runs outside the checkout."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from lockfile import LOCK, PROJECT, ROOT, Pin, declared, locked_extras, pins

# The project itself is installed from the checkout, not from the lock.
NOT_LOCKED = {"tokentune"}


def disagreements(requirements: list[Requirement], locked: dict[str, Pin]) -> list[str]:
    """What a `make lock` would change: declared but unpinned or pinned out of range, pinned as
    the project's own dependency but not declared, or pinned with nothing that needs it."""
    problems = []
    names = {canonicalize_name(r.name) for r in requirements}
    for req in requirements:
        pin = locked.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req.name} is in pyproject.toml but not in the lock")
        elif not req.specifier.contains(pin.version, prereleases=True):
            problems.append(f"the lock pins {req.name}=={pin.version} outside '{req.specifier}'")
    for name, pin in locked.items():
        if PROJECT in pin.via and name not in names:
            problems.append(f"the lock has {name} as a dependency of pyproject.toml, which no longer declares it")
        if not any(v == PROJECT or canonicalize_name(v) in locked for v in pin.via):
            problems.append(f"the lock pins {name}, which nothing in pyproject.toml needs")
    return problems


def test_the_lock_agrees_with_pyproject():
    problems = disagreements(declared(locked_extras()), pins())
    assert not problems, f"{LOCK.name} is stale (run `make lock`): " + "; ".join(problems)


@pytest.mark.parametrize("change, expected", [
    (lambda reqs, lock: reqs.append(Requirement("rich-click>=1")),
     "rich-click is in pyproject.toml but not in the lock"),
    (lambda reqs, lock: reqs.__setitem__(0, Requirement(f"{reqs[0].name}<0.1")),
     "outside '<0.1'"),
    (lambda reqs, lock: reqs.remove(next(r for r in reqs if r.name == "optuna")),
     "the lock has optuna as a dependency of pyproject.toml, which no longer declares it"),
    (lambda reqs, lock: lock.__setitem__("left-pad", Pin("1.0")),
     "the lock pins left-pad, which nothing in pyproject.toml needs"),
])
def test_a_dependency_in_only_one_of_them_is_found(change, expected):
    requirements, locked = declared(locked_extras()), pins()
    change(requirements, locked)
    assert any(expected in p for p in disagreements(requirements, locked))


@pytest.mark.skipif(os.environ.get("TOKENTUNE_UNLOCKED") == "1",
                    reason="make test-latest runs the newest releases on purpose, not the lock")
def test_the_venv_runs_the_locked_versions():
    locked = pins()
    wrong = []
    # The venv's own site-packages only: setuptools puts the packages it vendors on sys.path too.
    site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    for dist in metadata.distributions(path=sorted(site)):
        name = canonicalize_name(dist.metadata["Name"])
        if name in NOT_LOCKED:
            continue
        # torch's CPU build is 2.13.0+cpu: the lock's 2.13.0 means either build.
        version = Version(dist.version).public
        if name not in locked:
            wrong.append(f"{name}=={version} (not in the lock)")
        elif Version(locked[name].version) != Version(version):
            wrong.append(f"{name}=={version} (the lock says {locked[name].version})")
    assert not wrong, ("this venv is not the locked one; rebuild it with `rm -rf .venv && make setup`: "
                       + ", ".join(sorted(wrong)))


def _build_wheel(out: Path) -> Path:
    # A copy of the sources keeps the build's egg-info and build/ out of the checkout.
    src = out / "src-copy"
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(out), str(src)], check=True, capture_output=True)
    return next(out.glob("tokentune-*.whl"))


def _venv_with_only_the_wheel(wheel: Path, where: Path) -> Path:
    """A fresh venv with the wheel installed; the other dependencies are this venv's, put on the
    path by a .pth line, so nothing is downloaded and the checkout's src/ is not importable."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True)
    return where / "bin"


@pytest.mark.slow
def test_the_wheel_runs_outside_the_checkout(tmp_path):
    wheel = _build_wheel(tmp_path / "dist")
    assert "tokentune/conf/train.yaml" in zipfile.ZipFile(wheel).namelist()
    bin_dir = _venv_with_only_the_wheel(wheel, tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    # A user's own config folder: a task of theirs beside the shipped ones.
    (elsewhere / "my_conf" / "task").mkdir(parents=True)
    (elsewhere / "my_conf" / "task" / "my_sentiment.yaml").write_text(
        (ROOT / "conf" / "task" / "demo.yaml").read_text().replace("name: demo", "name: my_sentiment"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(bin_dir / "tokentune-train"), *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=300)

    where = subprocess.run([bin_dir / "python", "-c", "import tokentune; print(tokentune.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True)
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout + where.stderr
    job = run("--cfg", "job", "model=bert_tiny")
    assert job.returncode == 0, job.stderr
    assert "name: bert_tiny" in job.stdout and "name: demo" in job.stdout
    trained = run("--config-dir", "my_conf", "task=my_sentiment", "model=bert_tiny", "debug=fast_dev_run",
                  "logger=none", "hydra.run.dir=run", f"paths.cache_dir={tmp_path / 'cache'}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "name: my_sentiment" in (elsewhere / "run" / "config.yaml").read_text()
    results = json.loads((elsewhere / "run" / "results.json").read_text())
    assert results["steps"] == 1


def test_the_docs_name_the_locked_versions():
    block = (ROOT / "docs" / "installing.md").read_text().split("<!-- tested-versions -->")[1].split("<!--")[0]
    named = dict(part.strip().rsplit(" ", 1) for part in block.strip().rstrip(".").split(","))
    locked = pins()
    assert len(named) >= 8
    stale = {name: v for name, v in named.items() if locked[canonicalize_name(name)].version != v}
    assert not stale, f"docs/installing.md's tested versions differ from {LOCK.name}: {stale}"
