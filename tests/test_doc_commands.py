"""Every `python train.py ...` line of the README and docs/ composes as written, and the offline
ones run end to end in a short mode: a command that stops working fails here (issue 27)."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ENV = re.compile(r"^[A-Z_]+=\S+$")


def commands() -> list[tuple[str, list[str], dict[str, str]]]:
    """(where, train.py's arguments, environment) for each `python train.py` line in a fenced block."""
    found = []
    for page in PAGES:
        fenced, pending, start = False, "", 0
        for n, line in enumerate(page.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if not fenced:
                continue
            if pending:
                line, pending = pending + " " + line.strip(), ""
            else:
                start = n
            if line.rstrip().endswith("\\"):
                pending = line.rstrip()[:-1]
                continue
            if "python train.py" not in line:
                continue
            for part in line.split("#", 1)[0].split("&&"):
                words = shlex.split(part)
                env = {}
                while words and ENV.match(words[0]):
                    key, _, value = words.pop(0).partition("=")
                    env[key] = value
                if words[:2] == ["python", "train.py"] and not any("<" in w for w in words):
                    found.append((f"{page.relative_to(ROOT)}:{start}", words[2:], env))
    return found


COMMANDS = commands()


def single_run(args: list[str]) -> list[str]:
    """The overrides of one run of the command: `-m`'s sweeps at their first value."""
    out = []
    for a in args:
        if a in ("-m", "--multirun") or a.startswith("--cfg") or a in ("job", "hydra"):
            continue
        key, eq, value = a.partition("=")
        if eq and "," in value and not value.startswith(("[", "'", '"')):
            value = value.split(",")[0]
        out.append(f"{key}={value}" if eq else a)
    return out


def test_the_pages_hold_commands():
    assert len(COMMANDS) > 20 and any(where.startswith("README.md:") for where, _, _ in COMMANDS)


@pytest.mark.parametrize("where, args, env", COMMANDS, ids=[f"{w} {' '.join(a)}" for w, a, _ in COMMANDS])
def test_every_command_composes_as_written(where, args, env, monkeypatch, compose):
    from tokentune.config import validate

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cfg = validate(compose(*single_run(args)))
    assert cfg.task.name and cfg.model.name, where


# the offline ones, each cut to a few steps: the command's own overrides first, then the cut
OFFLINE = [(w, a) for w, a, env in COMMANDS if not env and "-m" not in a and not any(
    x.startswith(("trainer=", "experiment=", "task=", "hydra/")) or x in ("model=bert", "model=gpt2") for x in a)]
SHORT = ("trainer.max_steps=2", "trainer.limit_val_batches=1", "data.max_train_examples=32", "test=false",
         "callbacks.progress_bar=none")


@pytest.mark.parametrize("where, args", sorted({(" ".join(a), tuple(a)) for _, a in OFFLINE}),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_the_offline_commands_run_end_to_end(where, args, tmp_path, cache_dir):
    cmd = [sys.executable, "train.py", *args, *SHORT, f"hydra.run.dir={tmp_path / 'run'}", f"paths.cache_dir={cache_dir}"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    if "--cfg" not in args:
        assert (tmp_path / "run" / "results.json").is_file() and "validation:" in done.stdout
