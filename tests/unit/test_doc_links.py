"""The documentation stays inside the repository, and its links resolve.

Every link of README.md and docs/ names a file of this repository (and, for
a markdown page, a heading it has); nothing points at design notes kept
elsewhere, and every docs page the code or the tests name exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dotmac.ticketing.entry.reference_docs import anchor

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
# [text](target) and ![alt](target); the text may hold `code` or brackets.
_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)"
)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _prose(text: str) -> str:
    """The text of a page without its code, where nothing is a link."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    return _LINK.findall(_prose(text))


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings, numbered as GitHub numbers repeats."""
    found: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", text)):
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
        slug = anchor(plain)
        numbered, n = slug, 0
        while numbered in found:
            n += 1
            numbered = f"{slug}-{n}"
        found.add(numbered)
    return found


def broken_links(page: Path) -> Iterator[str]:
    text = page.read_text(encoding="utf-8")
    for target in links(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            yield f"{target}: points outside the repository"
            continue
        path_part, _, fragment = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.is_relative_to(ROOT):
            yield f"{target}: points outside the repository"
        elif not path.exists():
            yield f"{target}: no such file"
        elif (
            fragment
            and path.suffix == ".md"
            and fragment not in anchors(path.read_text(encoding="utf-8"))
        ):
            yield f"{target}: {path.name} has no heading #{fragment}"


def test_the_link_finder_sees_links_and_skips_code() -> None:
    text = (
        "See [the API](docs/api.md#errors), ![a picture](img.png) and"
        " [`make run`](Makefile).\n`[not](a-link.md)`\n"
        "```\n[nor](this.md)\n```\n"
    )
    assert links(text) == ["docs/api.md#errors", "img.png", "Makefile"]
    assert anchors("# A `code` Title!\n## Again\n## Again\n") == {
        "a-code-title",
        "again",
        "again-1",
    }


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repository(page: Path) -> None:
    assert list(broken_links(page)) == []


def test_the_readme_links_the_documentation() -> None:
    targets = links((ROOT / "README.md").read_text(encoding="utf-8"))
    linked = {t.partition("#")[0] for t in targets if t.startswith("docs/")}
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert pages - linked == set(), "README.md does not link these pages"


# Design notes and style guides of the workspace this was written in: they
# are not part of the repository, so nothing may send a reader there.
OUTSIDE = re.compile(r"\.\./shared|\bDESIGN\.md\b|\bSTYLE\.md\b")
SOURCES = [
    ROOT / "README.md",
    ROOT / "Makefile",
    ROOT / "pyproject.toml",
    *PAGES,
    *(ROOT / "src").rglob("*.py"),
    *(ROOT / "tests").rglob("*.py"),
    *(ROOT / "deploy").rglob("*"),
]


def test_nothing_names_documents_outside_the_repository() -> None:
    this_file = Path(__file__).resolve()
    named = [
        str(path.relative_to(ROOT))
        for path in SOURCES
        if path.is_file()
        and path != this_file
        and OUTSIDE.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert named == []


def test_every_docs_page_the_code_names_exists() -> None:
    missing = set()
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]:
        for name in re.findall(r"\bdocs/([\w/-]+\.md)", path.read_text("utf-8")):
            if not (ROOT / "docs" / name).is_file():
                missing.add(f"{path.relative_to(ROOT)}: docs/{name}")
    assert missing == set()
