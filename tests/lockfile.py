"""docker/requirements.lock read as data: each pin with its version and what pulls it in."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT

LOCK = ROOT / "docker" / "requirements.lock"
PROJECT = "tokentune (pyproject.toml)"


@dataclass
class Pin:
    version: str
    via: list[str] = field(default_factory=list)


def pins(text: str | None = None) -> dict[str, Pin]:
    """{canonical name: Pin} from uv's annotated output (`# via x` or `# via` + `#   x` lines)."""
    found: dict[str, Pin] = {}
    current = None
    for line in (LOCK.read_text() if text is None else text).splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line.startswith(" "):
            name, sep, version = line.split(";")[0].strip().partition("==")
            assert sep, f"{LOCK.name}: '{line}' is not pinned with =="
            current = found[canonicalize_name(name)] = Pin(version)
            continue
        via = re.sub(r"^#\s*(via)?", "", line.strip()).strip()
        if via and current is not None:
            current.via.append(via)
    return found


def locked_extras() -> list[str]:
    """The extras `make lock` resolves, read from the Makefile so the two cannot drift apart."""
    lock_recipe = (ROOT / "Makefile").read_text().split("\nlock:")[1].split("\n\n")[0]
    return re.findall(r"--extra (\S+)", lock_recipe)


def declared(extras: list[str]) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    return [Requirement(r) for r in wanted]
