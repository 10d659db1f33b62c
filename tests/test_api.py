"""The GraphQL API end to end: real store, real trained model, real HTTP and WebSocket."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import anyio
import pytest
from conftest import TEST_AUTH, ServedGraph, graphql, wait_for
from starlette.applications import Starlette
from starlette.testclient import TestClient

from donor_match.services.auth import Role
from entrypoints.asgi import create_app

# The API end to end on the production store as well as on the embedded one.
pytestmark = pytest.mark.backends("falkordb", "neo4j")

MATCHES = """
query Matches($donorId: ID!, $first: Int!) {
  matches(donorId: $donorId, first: $first) {
    rank score nonprofit { id name causes { id } }
  }
}
"""
RECORD = """
mutation Record($input: RecordDonationInput!) {
  recordDonation(input: $input) { id donorId nonprofitId amount timestamp }
}
"""


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def donors_by_activity(served_graph: ServedGraph) -> list[str]:
    counts: dict[str, int] = {}
    for donor_id in served_graph.tables["donations"].column("donor_id").to_pylist():
        counts[donor_id] = counts.get(donor_id, 0) + 1
    return sorted(counts, key=lambda d: (-counts[d], d))


def supported_by(served_graph: ServedGraph, donor_id: str) -> set[str]:
    donations = served_graph.tables["donations"].to_pylist()
    return {row["nonprofit_id"] for row in donations if row["donor_id"] == donor_id}


def test_matches_are_k_distinct_unsupported_nonprofits(
    client: TestClient, served_graph: ServedGraph
) -> None:
    donor_id = donors_by_activity(served_graph)[0]  # the donor with the most history
    as_donor = served_graph.token(Role.DONOR, donor_id)
    body = graphql(client, MATCHES, as_donor, donorId=donor_id, first=10)
    assert "errors" not in body, body
    matches = body["data"]["matches"]
    ids = [m["nonprofit"]["id"] for m in matches]
    assert len(ids) == 10
    assert len(set(ids)) == 10
    assert not set(ids) & supported_by(served_graph, donor_id)
    assert [m["rank"] for m in matches] == list(range(1, 11))
    scores = [m["score"] for m in matches]
    assert scores == sorted(scores, reverse=True)


def test_donor_nonprofit_and_causes(client: TestClient, served_graph: ServedGraph) -> None:
    donor = served_graph.tables["donors"].to_pylist()[0]
    body = graphql(
        client,
        "query($id: ID!) { donor(id: $id) { id name region { id } causes { id name } } }",
        served_graph.token(Role.DONOR, donor["id"]),
        id=donor["id"],
    )
    assert body["data"]["donor"]["name"] == donor["name"]
    assert body["data"]["donor"]["region"]["id"] == donor["region_id"]
    stated = {
        row["cause_id"]
        for row in served_graph.tables["donor_causes"].to_pylist()
        if row["donor_id"] == donor["id"]
    }
    assert {c["id"] for c in body["data"]["donor"]["causes"]} == stated

    causes = graphql(client, "{ causes { id name } }")["data"]["causes"]  # public: no token
    assert len(causes) == served_graph.tables["causes"].num_rows


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ('{ donor(id: "nobody") { id } }', {}, "NOT_FOUND"),
        ('{ nonprofit(id: "nothing") { id } }', {}, "NOT_FOUND"),
        (MATCHES, {"donorId": "nobody", "first": 5}, "NOT_FOUND"),
        (MATCHES, {"donorId": "donor-000001", "first": 0}, "BAD_USER_INPUT"),
        (MATCHES, {"donorId": "donor-000001", "first": 100_000}, "BAD_USER_INPUT"),
        (MATCHES, {"donorId": "donor-000001", "first": "ten"}, "BAD_USER_INPUT"),
        ("{ donor(id: 1) { nosuchfield } }", {}, "GRAPHQL_VALIDATION_FAILED"),
        ("{ donor(id: ", {}, "GRAPHQL_PARSE_FAILED"),
    ],
)


def test_bad_requests_get_coded_errors(
    client: TestClient, served_graph: ServedGraph, query: str, variables: dict[str, Any], code: str
) -> None:
    response = client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers=served_graph.token(Role.ADMIN, "ops"),
    )
    assert response.status_code < 500
    body = response.json()
    assert code in error_codes(body), body
    assert "Traceback" not in response.text


def test_a_client_gone_before_its_body_arrives_is_not_an_error(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    anyio.run(client.app, scope, receive, send)  # raises if the disconnect escapes
    assert sent == []  # nobody left to answer
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_record_donation_validates_and_is_idempotent(
    client: TestClient, served_graph: ServedGraph
) -> None:
    donor_id = served_graph.tables["donors"].column("id")[5].as_py()
    nonprofit_id = served_graph.tables["nonprofits"].column("id")[7].as_py()
    donation_id = f"api-test-{uuid.uuid4()}"
    payload = {"donorId": donor_id, "nonprofitId": nonprofit_id, "amount": 25.5, "id": donation_id}
    as_donor = served_graph.token(Role.DONOR, donor_id)
    first = graphql(client, RECORD, as_donor, input=payload)["data"]["recordDonation"]
    again = graphql(client, RECORD, as_donor, input=payload)["data"]["recordDonation"]
    assert first == again
    assert first["amount"] == 25.5

    # The new gift is excluded from the donor's matches at once, without retraining.
    matches = graphql(client, MATCHES, as_donor, donorId=donor_id, first=50)["data"]["matches"]
    assert nonprofit_id not in {m["nonprofit"]["id"] for m in matches}

    for bad, code in [
        ({**payload, "amount": -1}, "BAD_USER_INPUT"),
        ({**payload, "amount": 0}, "BAD_USER_INPUT"),
        ({**payload, "nonprofitId": "no-such-nonprofit", "id": None}, "NOT_FOUND"),
        ({**payload, "donorId": "no-such-donor", "id": None}, "NOT_FOUND"),
        # An id differing from a stored one by surrounding space once crashed FalkorDB.
        ({**payload, "id": f" {donation_id}"}, "BAD_USER_INPUT"),
        ({**payload, "id": f"{donation_id}\t"}, "BAD_USER_INPUT"),
        ({**payload, "id": "x" * 129}, "BAD_USER_INPUT"),
    ]:
        admin = served_graph.token(Role.ADMIN, "ops")
        assert error_codes(graphql(client, RECORD, admin, input=bad)) == [code]
    assert graphql(client, RECORD, as_donor, input=payload)["data"]["recordDonation"] == first


def test_subscription_receives_recorded_donation(
    client: TestClient, served_graph: ServedGraph
) -> None:
    nonprofit_id = served_graph.tables["nonprofits"].column("id")[3].as_py()
    donor_id = served_graph.tables["donors"].column("id")[9].as_py()
    as_nonprofit = served_graph.token(Role.NONPROFIT, nonprofit_id)
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": as_nonprofit})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {
                    "query": "subscription($id: ID!) { donationRecorded(nonprofitId: $id) "
                    "{ id donorId nonprofitId amount } }",
                    "variables": {"id": nonprofit_id},
                },
            }
        )
        # The subscription registers asynchronously; publish only once it listens.
        wait_for(lambda: client.app.state.services.events.subscriber_count() == 1)
        recorded = graphql(
            client,
            RECORD,
            served_graph.token(Role.DONOR, donor_id),
            input={"donorId": donor_id, "nonprofitId": nonprofit_id, "amount": 10},
        )["data"]["recordDonation"]
        message = ws.receive_json()
        assert message["type"] == "next", message
        assert message["payload"]["data"]["donationRecorded"] == {
            "id": recorded["id"],
            "donorId": donor_id,
            "nonprofitId": nonprofit_id,
            "amount": 10.0,
        }


def test_subscription_to_unknown_nonprofit_is_not_found(
    client: TestClient, served_graph: ServedGraph
) -> None:
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": served_graph.token(Role.ADMIN, "a")})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {
                    "query": 'subscription { donationRecorded(nonprofitId: "nope") { id } }'
                },
            }
        )
        message = ws.receive_json()
        assert message["type"] in {"next", "error"}
        errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
        assert [e["extensions"]["code"] for e in errors] == ["NOT_FOUND"]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["model_version"]


def test_graphiql_is_served(client: TestClient) -> None:
    page = client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


def test_a_donation_on_one_api_process_reaches_a_subscriber_on_another(
    served_graph: ServedGraph,
) -> None:
    """Two app instances share events through Redis (the embedded FalkorDB server)."""
    nonprofit_id = served_graph.tables["nonprofits"].column("id")[11].as_py()
    donor_id = served_graph.tables["donors"].column("id")[12].as_py()

    def make() -> Starlette:
        return create_app(served_graph.app_settings, served_graph.store_settings, TEST_AUTH)

    with (
        TestClient(make()) as listener,
        TestClient(make()) as writer,
        listener.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws,
    ):
        ws.send_json({"type": "connection_init",
                      "payload": served_graph.token(Role.NONPROFIT, nonprofit_id)})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "1", "type": "subscribe", "payload": {
            "query": f'subscription {{ donationRecorded(nonprofitId: "{nonprofit_id}") '
                     "{ id amount } }"}})
        wait_for(lambda: listener.app.state.services.events.subscriber_count() == 1)
        recorded = graphql(writer, RECORD, served_graph.token(Role.DONOR, donor_id),
                       input={"donorId": donor_id, "nonprofitId": nonprofit_id,
                              "amount": 12.5})["data"]["recordDonation"]
        message = ws.receive_json()
        assert message["payload"]["data"]["donationRecorded"] == {
            "id": recorded["id"], "amount": 12.5
        }
