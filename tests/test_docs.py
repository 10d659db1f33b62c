"""README.md stays a front door, and the links between it and docs/ keep working."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 200

# [text](target) outside code; a target with a scheme (https:, mailto:) is not ours to check.
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _prose(page: Path) -> str:
    """The page without fenced code blocks or inline code, where brackets are not links."""
    lines, in_fence = [], False
    for line in page.read_text().splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(lines)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(m[1]) for m in re.finditer(r"^#+\s+(.*)$", _prose(page), re.M)}


def _links(page: Path) -> list[str]:
    return [t for t in _LINK.findall(_prose(page)) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def test_the_pages_hold_links_to_check() -> None:
    """Guards the link parser: a parser that found nothing would pass every page."""
    readme_links = _links(README)
    assert "docs/configuration.md" in readme_links
    assert any("#" in link for page in PAGES for link in _links(page))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_at_files_and_headings_that_exist(page: Path) -> None:
    broken = []
    for link in _links(page):
        path_part, _, anchor = link.partition("#")
        target = (page.parent / path_part).resolve() if path_part else page
        if not target.exists():
            broken.append(f"{link} (no such file)")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link} (no heading #{anchor} in {target.name})")
    assert not broken, f"{page.relative_to(REPO)} has broken links: {broken}"


def test_readme_is_a_front_door() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail into docs/"
    )
    # The four commands a newcomer starts from stay at the top.
    top = "\n".join(lines[:12])
    for command in ("make demo", "DONOR_MATCH_STORE=neo4j make demo", "make test",
                    "donor-match quickstart"):
        assert command in top, f"README's opening lines lost `{command}`"
