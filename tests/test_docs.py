"""README.md stays a front door, and the links between it and docs/ keep working."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

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


def _selection_shape(selection_set: Any) -> dict[str, Any]:
    """{response key: sub-shape or None} of a GraphQL selection set."""
    return {
        field.name.value: _selection_shape(field.selection_set) if field.selection_set else None
        for field in selection_set.selections
    }


def _answer_fits(answer: Any, shape: dict[str, Any] | None, where: str) -> None:
    if shape is None:
        assert not isinstance(answer, dict | list), f"{where}: a leaf, got {answer!r}"
        return
    for item in answer if isinstance(answer, list) else [answer]:
        assert isinstance(item, dict) and set(item) == set(shape), (
            f"{where}: fields {sorted(item) if isinstance(item, dict) else item} "
            f"against the query's {sorted(shape)}"
        )
        for key, sub in shape.items():
            _answer_fits(item[key], sub, f"{where}.{key}")


def test_readme_example_query_runs_on_the_schema_and_its_answer_has_its_shape() -> None:
    """The front door's example stays true: the query validates against the API's schema, the
    answer shown has exactly the fields it selects, and the demo prints the same selection."""
    from graphql import parse, validate

    from donor_match.services.rate_limit import RateLimiter
    from donor_match.settings import AppSettings
    from entrypoints.cli.serve import SAMPLE_QUERY
    from graphql_api.observability import ApiMetrics
    from graphql_api.schema import build_schema

    text = README.read_text()
    (query,) = re.findall(r"```graphql\n(.*?)```", text, re.S)
    answers = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S)]
    assert len(answers) == 1, "README should show one answer, as JSON"
    schema = build_schema(AppSettings(), RateLimiter(600), ApiMetrics())._schema
    document = parse(query)
    assert not validate(schema, document), validate(schema, document)
    shape = _selection_shape(document.definitions[0].selection_set)  # type: ignore[attr-defined]
    assert answers[0]["data"], "the answer shows no data"
    _answer_fits(answers[0]["data"], shape, "data")
    demo = parse(SAMPLE_QUERY.format(donor_id="d"))
    assert _selection_shape(demo.definitions[0].selection_set) == shape  # type: ignore[attr-defined]
