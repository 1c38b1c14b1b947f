"""Where a result was measured: device, commit and package versions, for result files."""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "pytorch-lightning", "transformers", "tokenizers", "peft")
ROOT = Path(__file__).resolve().parents[3]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()


def commit() -> str:
    """The checkout's short commit, +dirty when tracked files differ from it."""
    # a copy of the checkout without .git (an offline GPU node) is told its commit by whoever made it
    if os.environ.get("TOKENTUNE_COMMIT"):
        return os.environ["TOKENTUNE_COMMIT"]
    dirty = "+dirty" if _git("status", "--porcelain", "--untracked-files=no") else ""
    return (_git("rev-parse", "--short", "HEAD") or "unknown") + dirty


def cpu_name() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (Linux), else the architecture."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    name = next((line.partition(":")[2].strip() for line in lines if line.startswith("model name")), "")
    return f"{name}, {platform.machine()}" if name else platform.machine()


def environment() -> dict:
    """The GPU's name (or the CPU's), the commit (+dirty when tracked files differ), versions."""
    import torch

    device = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
              else f"CPU only ({cpu_name()}, {os.cpu_count()} cores)")
    return {"device": device, "commit": commit(),
            "python": platform.python_version(),
            "packages": {p: metadata.version(p) for p in PACKAGES}}


def markdown_lines(env: dict) -> list[str]:
    return [f"- device: {env['device']}", f"- commit: {env['commit']}",
            "- packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items())]
