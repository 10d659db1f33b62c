"""Donors edit their preferences, nonprofits their profiles; feedback; change subscriptions."""

from __future__ import annotations

from conftest import ServedGraph, error_codes, graphql, wait_for
from starlette.testclient import TestClient

from donor_match.services.auth import Role

PREFERENCES = """mutation($d: ID!, $in: DonorPreferencesInput!) {
  updateDonorPreferences(donorId: $d, input: $in) { id budget region { id } causes { id } } }"""
UPSERT = """mutation($in: NonprofitProfileInput!) {
  upsertNonprofit(input: $in) { id name description fundingNeed region { id } causes { id } } }"""


def test_donor_replaces_preferences_and_bad_input_names_the_field(
    client: TestClient, served_graph: ServedGraph
) -> None:
    donor = served_graph.tables["donors"].column("id")[40].as_py()
    causes = served_graph.tables["causes"].column("id").to_pylist()
    region = served_graph.tables["regions"].column("id")[2].as_py()
    me = served_graph.token(Role.DONOR, donor)
    body = graphql(client, PREFERENCES, me, d=donor,
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
        body = graphql(client, PREFERENCES, me, d=donor, **{"in": bad})
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert fragment in body["errors"][0]["message"]
    # Nothing of the refused updates was applied.
    check = graphql(client, PREFERENCES, me, d=donor, **{"in": {"causeIds": causes[:2]}})
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
    created = graphql(client, UPSERT, me, **{"in": profile})["data"]["upsertNonprofit"]
    assert created == {"id": new_id, "name": "Riverside Food Bank",
                       "description": "Meals for families", "fundingNeed": 12000.0,
                       "region": {"id": region}, "causes": [{"id": cause}]}
    edited = graphql(client, UPSERT, me, **{"in": {**profile, "fundingNeed": 500}})
    assert edited["data"]["upsertNonprofit"]["fundingNeed"] == 500.0
    for bad in ({**profile, "name": " "}, {**profile, "causeIds": []},
                {**profile, "fundingNeed": -1}):
        assert error_codes(graphql(client, UPSERT, me, **{"in": bad})) == ["BAD_USER_INPUT"]
    # Another nonprofit may not touch it.
    other = served_graph.token(Role.NONPROFIT, "someone-else")
    assert error_codes(graphql(client, UPSERT, other, **{"in": profile})) == ["FORBIDDEN"]


def test_feedback_on_a_served_match(client: TestClient, served_graph: ServedGraph) -> None:
    donor = served_graph.tables["donations"].column("donor_id")[3].as_py()
    me = served_graph.token(Role.DONOR, donor)
    matches = graphql(client, "query($d: ID!) { matches(donorId: $d, first: 2) { id } }", me,
                  d=donor)["data"]["matches"]
    feedback = "mutation($m: ID!) { matchFeedback(matchId: $m, action: DISMISSED) }"
    assert graphql(client, feedback, me, m=matches[0]["id"]) == {"data": {"matchFeedback": True}}
    assert error_codes(graphql(client, feedback, me, m="not-a-match")) == ["BAD_USER_INPUT"]


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
        graphql(client, PREFERENCES, me, d=donor, **{"in": {"causeIds": causes[:1]}})
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
        graphql(client, UPSERT, served_graph.token(Role.ADMIN, "ops"), **{"in": profile})
        message = ws.receive_json()
        assert message["payload"]["data"]["nonprofitUpdated"] == {
            "id": nonprofit["id"], "fundingNeed": 99.0
        }
