"""Nonprofits' initiatives and needs, causes by id: real HTTP, store and DataLoaders."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ServedGraph, error_codes, graphql
from starlette.testclient import TestClient

from donor_match.services.auth import Role

UPSERT = """mutation($in: InitiativeInput!) {
  upsertInitiative(input: $in) {
    id nonprofitId title description fundingGoal fundingNeed postedAt causes { id name } } }"""
DELETE = "mutation($id: ID!) { deleteInitiative(id: $id) }"
OF = """query($id: ID!) { nonprofit(id: $id) { id initiatives { id title fundingNeed
  causes { id } } } }"""


def nonprofit(served_graph: ServedGraph, index: int) -> str:
    # Far from the first few nonprofits, which other modules edit.
    return served_graph.tables["nonprofits"].column("id")[index].as_py()


def test_a_nonprofit_creates_edits_lists_and_deletes_its_initiatives(
    client: TestClient, served_graph: ServedGraph
) -> None:
    owner = nonprofit(served_graph, 50)
    causes = served_graph.tables["causes"].column("id").to_pylist()
    names = dict(zip(causes, served_graph.tables["causes"].column("name").to_pylist(),
                     strict=True))
    me = served_graph.token(Role.NONPROFIT, owner)
    draft = {"nonprofitId": owner, "title": "  School garden ", "causeIds": causes[:2],
             "description": "Raised beds", "fundingGoal": 5000, "fundingNeed": 3000}
    created = graphql(client, UPSERT, me, **{"in": draft})["data"]["upsertInitiative"]
    assert created["id"].startswith("initiative-")
    assert created["nonprofitId"] == owner
    assert created["title"] == "School garden"
    assert (created["fundingGoal"], created["fundingNeed"]) == (5000.0, 3000.0)
    assert created["causes"] == [{"id": c, "name": names[c]} for c in sorted(causes[:2])]
    assert created["postedAt"] > 0

    edited = graphql(client, UPSERT, me, **{"in": {**draft, "id": created["id"], "fundingNeed": 10,
                                                "causeIds": [causes[3]]}})
    edited = edited["data"]["upsertInitiative"]
    assert edited["postedAt"] == created["postedAt"]  # first posting time kept
    listed = graphql(client, OF, id=owner)["data"]["nonprofit"]["initiatives"]  # public
    assert listed == [{"id": created["id"], "title": "School garden", "fundingNeed": 10.0,
                       "causes": [{"id": causes[3]}]}]

    assert graphql(client, DELETE, me, id=created["id"])["data"]["deleteInitiative"] is True
    assert graphql(client, OF, id=owner)["data"]["nonprofit"]["initiatives"] == []
    assert error_codes(graphql(client, DELETE, me, id=created["id"])) == ["NOT_FOUND"]


def test_initiatives_stay_with_their_nonprofit(
    client: TestClient, served_graph: ServedGraph
) -> None:
    owner, other = nonprofit(served_graph, 51), nonprofit(served_graph, 52)
    cause = served_graph.tables["causes"].column("id")[0].as_py()
    draft = {"nonprofitId": owner, "title": "Shelter beds", "causeIds": [cause]}
    created = graphql(client, UPSERT, served_graph.token(Role.NONPROFIT, owner),
                   **{"in": draft})["data"]["upsertInitiative"]
    as_other = served_graph.token(Role.NONPROFIT, other)
    try:
        # Another nonprofit may neither take it over nor edit or delete it.
        taken = graphql(client, UPSERT, as_other,
                     **{"in": {**draft, "id": created["id"], "nonprofitId": other}})
        assert error_codes(taken) == ["FORBIDDEN"]
        assert error_codes(graphql(client, DELETE, as_other, id=created["id"])) == ["FORBIDDEN"]
        # Not even an admin moves it to another nonprofit.
        moved = graphql(client, UPSERT, served_graph.token(Role.ADMIN, "ops"),
                     **{"in": {**draft, "id": created["id"], "nonprofitId": other}})
        assert error_codes(moved) == ["BAD_USER_INPUT"]
        assert owner in moved["errors"][0]["message"]
    finally:
        graphql(client, DELETE, served_graph.token(Role.ADMIN, "ops"), id=created["id"])


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"title": "   "}, "title"),
        ({"causeIds": []}, "causeIds"),
        ({"causeIds": ["no-such-cause"]}, "no-such-cause"),
        ({"fundingGoal": 100, "fundingNeed": 200}, "fundingNeed"),
        ({"fundingNeed": -5}, "fundingNeed"),
        ({"nonprofitId": "no-such-nonprofit"}, "no-such-nonprofit"),
        ({"id": " "}, "id"),
    ],
)


def test_bad_initiatives_name_what_is_wrong(
    client: TestClient, served_graph: ServedGraph, change: dict[str, Any], fragment: str
) -> None:
    owner = nonprofit(served_graph, 53)
    cause = served_graph.tables["causes"].column("id")[0].as_py()
    draft = {"nonprofitId": owner, "title": "Books", "causeIds": [cause], **change}
    body = graphql(client, UPSERT, served_graph.token(Role.ADMIN, "ops"), **{"in": draft})
    assert error_codes(body) in (["BAD_USER_INPUT"], ["NOT_FOUND"]), body
    assert fragment in body["errors"][0]["message"]


def test_initiatives_of_a_page_of_nonprofits_cost_one_more_round_trip(
    client: TestClient, served_graph: ServedGraph
) -> None:
    def queries() -> float:
        text = client.get("/metrics").text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("donor_match_store_queries_total{"))

    page = """{ nonprofits(first: 20) { edges { node { id causes { id }
      initiatives { id causes { id } } } } } }"""
    before = queries()
    edges = graphql(client, page)["data"]["nonprofits"]["edges"]
    assert len(edges) == 20
    # Page of ids, the 20 nonprofits, and all their initiatives in one batched read.
    assert queries() - before == 3


def test_causes_by_id(client: TestClient, served_graph: ServedGraph) -> None:
    cause = served_graph.tables["causes"].to_pylist()[2]
    found = graphql(client, "query($id: ID!) { cause(id: $id) { id name } }", id=cause["id"])
    assert found["data"]["cause"] == cause
    assert error_codes(graphql(client, '{ cause(id: "no-such-cause") { id } }')) == ["NOT_FOUND"]


def test_funding_need_is_the_nonprofits_own_to_set(
    client: TestClient, served_graph: ServedGraph
) -> None:
    owner = nonprofit(served_graph, 54)
    query = """mutation($n: ID!, $need: Float) {
      setFundingNeed(nonprofitId: $n, fundingNeed: $need) { id fundingNeed } }"""
    me = served_graph.token(Role.NONPROFIT, owner)
    set_ = graphql(client, query, me, n=owner, need=750.0)["data"]["setFundingNeed"]
    assert set_ == {"id": owner, "fundingNeed": 750.0}
    assert error_codes(graphql(client, query, me, n=owner, need=-1.0)) == ["BAD_USER_INPUT"]
    other = served_graph.token(Role.NONPROFIT, nonprofit(served_graph, 55))
    refused = graphql(client, query, other, n=owner, need=1.0)
    assert error_codes(refused) == ["FORBIDDEN"]
    admin = served_graph.token(Role.ADMIN, "ops")
    missing = graphql(client, query, admin, n="no-such-nonprofit", need=1.0)
    assert error_codes(missing) == ["NOT_FOUND"]
    cleared = graphql(client, query, me, n=owner, need=None)["data"]["setFundingNeed"]
    assert cleared == {"id": owner, "fundingNeed": None}
