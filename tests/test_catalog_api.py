"""Browsing nonprofits: filters, cursor pages, batched reads; filtered matches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LOOPBACK, TEST_AUTH, ServedGraph
from starlette.testclient import TestClient

from donor_match.services.auth import Role
from entrypoints.asgi import create_app
from etl.snapshot import export_tables
from graph_store import open_store

PAGE = """
query Page($filter: NonprofitFilter, $first: Int!, $after: String) {
  nonprofits(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id name region { id } causes { id } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


@pytest.fixture(scope="module")
def client(served_graph: ServedGraph) -> Iterator[TestClient]:
    app = create_app(served_graph.app_settings, served_graph.store_settings, TEST_AUTH)
    with TestClient(app, client=LOOPBACK) as test_client:
        yield test_client


def page(client: TestClient, **variables: Any) -> dict[str, Any]:
    body = client.post("/graphql", json={"query": PAGE, "variables": variables}).json()
    assert "errors" not in body, body
    return body["data"]["nonprofits"]


def causes_of(served_graph: ServedGraph) -> dict[str, set[str]]:
    causes: dict[str, set[str]] = {}
    for row in served_graph.tables["nonprofit_causes"].to_pylist():
        causes.setdefault(row["nonprofit_id"], set()).add(row["cause_id"])
    return causes


def test_pages_walk_every_nonprofit_once_in_id_order(
    client: TestClient, served_graph: ServedGraph
) -> None:
    seen: list[str] = []
    after = None
    while True:
        result = page(client, first=25, after=after)
        seen += [edge["node"]["id"] for edge in result["edges"]]
        if not result["pageInfo"]["hasNextPage"]:
            break
        after = result["pageInfo"]["endCursor"]
    # Other tests add nonprofits to the shared graph: compare with a full export of it.
    store = open_store(served_graph.store_settings)
    try:
        assert seen == sorted(export_tables(store)["nonprofits"].column("id").to_pylist())
    finally:
        store.close()


def test_filters_by_cause_region_and_text(client: TestClient, served_graph: ServedGraph) -> None:
    nonprofits = served_graph.tables["nonprofits"].to_pylist()
    cause = served_graph.tables["causes"].column("id")[1].as_py()
    region = nonprofits[0]["region_id"]
    expected = sorted(
        n["id"] for n in nonprofits
        if n["region_id"] == region and cause in causes_of(served_graph).get(n["id"], set())
    )
    result = page(client, first=100, filter={"causeIds": [cause], "regionIds": [region]})
    assert [edge["node"]["id"] for edge in result["edges"]] == expected

    named = page(client, first=100, filter={"text": " NONPROFIT 1"})  # case and space blind
    assert {e["node"]["name"] for e in named["edges"]} == {
        n["name"] for n in nonprofits if "nonprofit 1" in n["name"].lower()
    }


def test_a_page_with_nested_fields_costs_two_store_round_trips(client: TestClient) -> None:
    def queries() -> float:
        text = client.get("/metrics").text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("donor_match_store_queries_total{"))

    before = queries()
    result = page(client, first=20)
    assert len(result["edges"]) == 20
    assert all(edge["node"]["causes"] for edge in result["edges"])
    # One for the page of ids, one batched read of the 20 nonprofits with causes and regions.
    assert queries() - before == 2


@pytest.mark.parametrize("cursor", ["garbage!", "bm9wZTp4"])
def test_foreign_cursors_are_bad_input(client: TestClient, cursor: str) -> None:
    body = client.post(
        "/graphql", json={"query": PAGE, "variables": {"first": 5, "after": cursor}}
    ).json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]


def test_matches_respect_cause_filter_and_can_include_supported(
    client: TestClient, served_graph: ServedGraph
) -> None:
    donor_id = served_graph.tables["donations"].column("donor_id")[0].as_py()
    cause = served_graph.tables["causes"].column("id")[0].as_py()
    query = """query($d: ID!, $f: MatchFilter) {
      matches(donorId: $d, first: 50, filter: $f) { nonprofit { id causes { id } } } }"""
    headers = served_graph.token(Role.DONOR, donor_id)

    def matched(filter: dict[str, Any]) -> list[dict[str, Any]]:
        body = client.post("/graphql", headers=headers,
                           json={"query": query, "variables": {"d": donor_id, "f": filter}})
        return body.json()["data"]["matches"]

    by_cause = matched({"causes": [cause]})
    assert by_cause
    assert all(cause in {c["id"] for c in m["nonprofit"]["causes"]} for m in by_cause)
    supported = {r["nonprofit_id"] for r in served_graph.tables["donations"].to_pylist()
                 if r["donor_id"] == donor_id}
    everything = {m["nonprofit"]["id"] for m in matched({"excludeSupported": False})}
    assert supported & everything  # the donor's own nonprofits may come back when asked
