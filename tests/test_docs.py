"""The README and docs/: every relative link resolves, every page is reachable from the README,
and the README's test command is the one CI runs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", ROOT / "experiments" / "README.md", *DOCS]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def unfenced(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code, where a link is a link."""
    return re.sub(r"`[^`\n]*`", "", unfenced(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The page's heading anchors; a repeated heading gets -1, -2, ... as on GitHub."""
    found: set[str] = set()
    for heading in re.findall(r"^#+\s+(.*)$", unfenced(page.read_text()).replace("`", ""), flags=re.M):
        n, candidate = 0, slug(heading)
        while candidate in found:
            n += 1
            candidate = f"{slug(heading)}-{n}"
        found.add(candidate)
    return found


def test_the_docs_exist():
    names = {p.name for p in DOCS}
    assert {"commands.md", "configuration.md", "data.md", "speed.md", "distributed.md", "sweeps.md",
            "results.md", "installing.md", "docker.md", "testing.md", "extending.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_the_readme_links_every_docs_page():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in LINK.findall(prose((ROOT / "README.md").read_text()))}
    orphans = [p.name for p in DOCS if p.resolve() not in linked]
    assert not orphans, f"docs pages the README does not link: {orphans}"


def test_the_anchor_rule():
    # headings with inline code, punctuation and a non-ASCII sign, as GitHub anchors them
    assert slug("Trimming the vocabulary (tokenizer=trim)") == "trimming-the-vocabulary-tokenizertrim"
    assert slug("Sweeps: methods × seeds in one table") == "sweeps-methods--seeds-in-one-table"
    assert slug("Why not hydra-optuna-sweeper") == "why-not-hydra-optuna-sweeper"


def test_the_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in quickstart.strip().splitlines()]
    assert commands == ["make train", "make test"]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert [line for line in ci if line.startswith("make ")] == ["make test 2>&1 | tee \"$log\""]


def test_every_config_listing_is_the_real_file():
    """A ```yaml block whose first line names a config file (`# conf/...yaml`) is that file, whole."""
    listings = []
    for page in PAGES:
        for block in re.findall(r"```yaml\n(.*?)```", page.read_text(), flags=re.S):
            first, _, body = block.partition("\n")
            if re.fullmatch(r"# conf/\S+\.yaml", first):
                listings.append(first[2:])
                assert body == (ROOT / first[2:]).read_text(), f"{page.name}: the listing of {first[2:]} is not the file"
    assert "conf/hparams_search/demo_lora.yaml" in listings
