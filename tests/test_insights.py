"""Nonprofit insights: aggregates of who supports similar causes, small groups suppressed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import TEST_AUTH, ServedGraph
from starlette.testclient import TestClient

from donor_match.services.auth import Role
from entrypoints.asgi import create_app

QUERY = """query($id: ID!) { nonprofitInsights(id: $id) {
  supporterRegions { label donors totalAmount } supporterInterests { label donors totalAmount }
  suppressedGroups minGroupSize } }"""
NONPROFIT = "nonprofit-00004"


@pytest.fixture(scope="module")
def client(served_graph: ServedGraph) -> Iterator[TestClient]:
    settings = served_graph.app_settings.model_copy(update={"insights_min_group": 40})
    with TestClient(create_app(settings, served_graph.store_settings, TEST_AUTH)) as test_client:
        yield test_client


def expected_region_counts(served_graph: ServedGraph) -> dict[str, int]:
    """Hand-computed from the loaded tables: donors of nonprofits sharing a cause, by region."""
    tables = {name: table.to_pylist() for name, table in served_graph.tables.items()}
    works_on: dict[str, set[str]] = {}
    for row in tables["nonprofit_causes"]:
        works_on.setdefault(row["nonprofit_id"], set()).add(row["cause_id"])
    peers = {n for n, causes in works_on.items() if causes & works_on[NONPROFIT]}
    donors = {d["donor_id"] for d in tables["donations"] if d["nonprofit_id"] in peers}
    region_name = {r["id"]: r["name"] for r in tables["regions"]}
    counts: dict[str, int] = {}
    for donor in tables["donors"]:
        if donor["id"] in donors:
            name = region_name[donor["region_id"]]
            counts[name] = counts.get(name, 0) + 1
    return counts


def test_insights_are_aggregates_with_small_groups_suppressed(
    client: TestClient, served_graph: ServedGraph
) -> None:
    body = client.post("/graphql", json={"query": QUERY, "variables": {"id": NONPROFIT}},
                       headers=served_graph.token(Role.NONPROFIT, NONPROFIT)).json()
    insights = body["data"]["nonprofitInsights"]
    expected = expected_region_counts(served_graph)
    shown = {g["label"]: g["donors"] for g in insights["supporterRegions"]}
    # Other tests may add a few donations to the shared graph: allow for them.
    assert shown.keys() == {label for label, n in expected.items() if n >= 40}
    assert all(abs(shown[label] - expected[label]) <= 3 for label in shown)
    assert all(g["donors"] >= 40 for g in insights["supporterInterests"])
    assert insights["minGroupSize"] == 40
    hidden = sum(1 for n in expected.values() if n < 40)
    assert insights["suppressedGroups"] >= hidden
    assert all(float(g["totalAmount"]).is_integer() for g in insights["supporterRegions"])


@pytest.mark.parametrize(
    ("role", "subject", "code"),
    [(Role.NONPROFIT, "nonprofit-00005", "FORBIDDEN"), (Role.DONOR, "donor-000001", "FORBIDDEN"),
     (Role.ADMIN, "ops", None)],
)
def test_insights_are_for_the_nonprofit_itself(
    client: TestClient, served_graph: ServedGraph, role: Role, subject: str, code: str | None
) -> None:
    body = client.post("/graphql", json={"query": QUERY, "variables": {"id": NONPROFIT}},
                       headers=served_graph.token(role, subject)).json()
    assert [e["extensions"]["code"] for e in body.get("errors", [])] == ([code] if code else [])
