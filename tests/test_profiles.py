"""Donors edit their preferences, nonprofits their profiles; feedback; change subscriptions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import TEST_AUTH, ServedGraph
from starlette.testclient import TestClient

from donor_match.services.auth import Role
from graphql_api.app import create_app

PREFERENCES = """mutation($d: ID!, $in: DonorPreferencesInput!) {
  updateDonorPreferences(donorId: $d, input: $in) { id budget region { id } causes { id } } }"""
UPSERT = """mutation($in: NonprofitProfileInput!) {
  upsertNonprofit(input: $in) { id name description fundingNeed region { id } causes { id } } }"""


@pytest.fixture(scope="module")
def client(served_graph: ServedGraph) -> Iterator[TestClient]:
    app = create_app(served_graph.app_settings, served_graph.store_settings, TEST_AUTH)
    with TestClient(app) as test_client:
        yield test_client


def gql(client: TestClient, query: str, headers: dict[str, str], **variables: Any) -> dict:
    return client.post("/graphql", json={"query": query, "variables": variables},
                       headers=headers).json()


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_donor_replaces_preferences_and_bad_input_names_the_field(
    client: TestClient, served_graph: ServedGraph
) -> None:
    donor = served_graph.tables["donors"].column("id")[40].as_py()
    causes = served_graph.tables["causes"].column("id").to_pylist()
    region = served_graph.tables["regions"].column("id")[2].as_py()
    me = served_graph.token(Role.DONOR, donor)
    body = gql(client, PREFERENCES, me, d=donor,
               **{"in": {"causeIds": causes[:2], "regionId": region, "budget": 250.0}})
    assert body["data"]["updateDonorPreferences"] == {
        "id": donor, "budget": 250.0, "region": {"id": region},
        "causes": [{"id": c} for c in sorted(causes[:2])],
    }
    for bad, fragment in [
        ({"causeIds": ["no-such-cause"]}, "no-such-cause"),
        ({"causeIds": [], "regionId": "atlantis"}, "atlantis"),
        ({"causeIds": [], "budget": -5}, "budget"),
    ]:
        body = gql(client, PREFERENCES, me, d=donor, **{"in": bad})
        assert codes(body) == ["BAD_USER_INPUT"]
        assert fragment in body["errors"][0]["message"]
    # Nothing of the refused updates was applied.
    check = gql(client, PREFERENCES, me, d=donor, **{"in": {"causeIds": causes[:2]}})
    assert check["data"]["updateDonorPreferences"]["region"] == {"id": region}


def test_a_nonprofit_creates_and_edits_its_own_profile(
    client: TestClient, served_graph: ServedGraph
) -> None:
    new_id = "nonprofit-new-profile"
    me = served_graph.token(Role.NONPROFIT, new_id)
    cause = served_graph.tables["causes"].column("id")[3].as_py()
    region = served_graph.tables["regions"].column("id")[1].as_py()
    profile = {"id": new_id, "name": "  Riverside Food Bank ", "regionId": region,
               "causeIds": [cause], "description": "Meals for families", "fundingNeed": 12000}
    created = gql(client, UPSERT, me, **{"in": profile})["data"]["upsertNonprofit"]
    assert created == {"id": new_id, "name": "Riverside Food Bank",
                       "description": "Meals for families", "fundingNeed": 12000.0,
                       "region": {"id": region}, "causes": [{"id": cause}]}
    edited = gql(client, UPSERT, me, **{"in": {**profile, "fundingNeed": 500}})
    assert edited["data"]["upsertNonprofit"]["fundingNeed"] == 500.0
    for bad in ({**profile, "name": " "}, {**profile, "causeIds": []},
                {**profile, "fundingNeed": -1}):
        assert codes(gql(client, UPSERT, me, **{"in": bad})) == ["BAD_USER_INPUT"]
    # Another nonprofit may not touch it.
    other = served_graph.token(Role.NONPROFIT, "someone-else")
    assert codes(gql(client, UPSERT, other, **{"in": profile})) == ["FORBIDDEN"]


def test_feedback_on_a_served_match(client: TestClient, served_graph: ServedGraph) -> None:
    donor = served_graph.tables["donations"].column("donor_id")[3].as_py()
    me = served_graph.token(Role.DONOR, donor)
    matches = gql(client, "query($d: ID!) { matches(donorId: $d, first: 2) { id } }", me,
                  d=donor)["data"]["matches"]
    feedback = "mutation($m: ID!) { matchFeedback(matchId: $m, action: DISMISSED) }"
    assert gql(client, feedback, me, m=matches[0]["id"]) == {"data": {"matchFeedback": True}}
    assert codes(gql(client, feedback, me, m="not-a-match")) == ["BAD_USER_INPUT"]


def test_matches_updated_after_preferences_change(
    client: TestClient, served_graph: ServedGraph
) -> None:
    donor = served_graph.tables["donors"].column("id")[41].as_py()
    me = served_graph.token(Role.DONOR, donor)
    causes = served_graph.tables["causes"].column("id").to_pylist()
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": me})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "1", "type": "subscribe", "payload": {
            "query": f'subscription {{ matchesUpdated(donorId: "{donor}", first: 3) '
                     "{ rank nonprofit { id } } }"}})
        wait_for(lambda: client.app.state.services.events.subscriber_count() == 1)
        gql(client, PREFERENCES, me, d=donor, **{"in": {"causeIds": causes[:1]}})
        message = ws.receive_json()
        assert [m["rank"] for m in message["payload"]["data"]["matchesUpdated"]] == [1, 2, 3]


def test_nonprofit_updated_is_public(client: TestClient, served_graph: ServedGraph) -> None:
    nonprofit = served_graph.tables["nonprofits"].to_pylist()[5]
    causes = sorted(r["cause_id"] for r in served_graph.tables["nonprofit_causes"].to_pylist()
                    if r["nonprofit_id"] == nonprofit["id"])
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "1", "type": "subscribe", "payload": {
            "query": f'subscription {{ nonprofitUpdated(id: "{nonprofit["id"]}") '
                     "{ id fundingNeed } }"}})
        wait_for(lambda: client.app.state.services.events.subscriber_count() == 1)
        profile = {"id": nonprofit["id"], "name": nonprofit["name"],
                   "regionId": nonprofit["region_id"], "causeIds": causes, "fundingNeed": 99}
        gql(client, UPSERT, served_graph.token(Role.ADMIN, "ops"), **{"in": profile})
        message = ws.receive_json()
        assert message["payload"]["data"]["nonprofitUpdated"] == {
            "id": nonprofit["id"], "fundingNeed": 99.0
        }
