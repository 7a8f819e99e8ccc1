"""The front door and the documentation site stay true: README is short and its test command is
the one CI runs, every link and picture points at a file in the repository, every page is on
the site, and every ``docs/<page>.md, "<heading>"`` a code comment cites still exists.

Checked on the files, so a page moved or renamed fails here, before `mkdocs build --strict`
fails in CI (which also checks anchors)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MAX_README_LINES = 260
PAGES = sorted(DOCS.glob("*.md"))
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SNIPPET = re.compile(r'^--8<--\s+"([^"]+)"', re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")
CODE_DIRS = ("mlflow_prov", "exporters", "tests", "benchmarks", "examples", "docs")
CITATION = re.compile(r'docs/([\w.-]+\.md)(?:,\s*"([^"]+)")?')


def _prose(markdown: str) -> str:
    """The text a reader sees as prose: fenced blocks and inline code removed, so a link-like
    string inside an example is not taken for a link."""
    return INLINE_CODE.sub("", FENCE.sub("", markdown))


def _relative_targets(page: Path) -> list[str]:
    targets = [m.group(1) for m in LINK.finditer(_prose(page.read_text(encoding="utf-8")))]
    return [t for t in targets if not t.startswith(EXTERNAL) and not t.startswith("#")]


def _nav_files(node: object) -> set[str]:
    if isinstance(node, str):
        return {node}
    if isinstance(node, dict):
        return set().union(*(_nav_files(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_nav_files(v) for v in node))
    return set()


def test_readme_is_a_front_door_not_a_manual():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): move the detail "
        "into the task pages under docs/")


def test_readme_states_the_test_command_ci_runs():
    ci_commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                   if line.strip() and not line.lstrip().startswith("#")]
    test_command = ci_commands[-1]
    assert test_command == ".venv/bin/python -m pytest", test_command
    readme = README.read_text(encoding="utf-8")
    assert f"```bash\n{test_command}\n```" in readme, "README must show .ci/run's test command"
    assert "bash .ci/run" in readme


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_image_resolves_to_a_file_in_the_repository(page):
    broken = []
    for target in _relative_targets(page):
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.is_file():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to files that are not there: {broken}"


def test_snippets_included_into_pages_exist():
    included = [m.group(1) for page in PAGES
                for m in SNIPPET.finditer(page.read_text(encoding="utf-8"))]
    assert included, "docs/architecture.md includes ARCHITECTURE.md"
    assert [name for name in included if not (ROOT / name).is_file()] == []


def test_every_page_is_in_the_site_navigation():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["docs_dir"] == "docs"
    nav = _nav_files(config["nav"])
    pages = {page.name for page in PAGES}
    assert pages - nav == set(), "pages missing from mkdocs.yml's nav"
    assert nav - pages == set(), "nav entries without a page"


def _headings(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {line.lstrip("#").strip() for line in text.splitlines()
            if re.match(r"#{1,6} ", line)}


def test_code_comments_cite_pages_and_sections_that_exist():
    missing = []
    for folder in CODE_DIRS:
        for source in sorted((ROOT / folder).rglob("*")):
            if source.suffix != ".py":
                continue
            for page_name, section in CITATION.findall(source.read_text(encoding="utf-8")):
                page = DOCS / page_name
                section = " ".join(section.split())
                if not page.is_file() or (section and section not in _headings(page)):
                    missing.append(f"{source.relative_to(ROOT)}: docs/{page_name} {section!r}")
    assert missing == []
