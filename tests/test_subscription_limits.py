"""Subscriptions share one Redis pub/sub connection per process, and are capped per socket, per
caller and per process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from conftest import LOOPBACK, TEST_AUTH, ServedGraph, graphql, wait_for
from starlette.testclient import TestClient

from donor_match.services.auth import Role
from donor_match.services.events import RedisEventBus
from entrypoints.asgi import create_app

FEED = "subscription($id: ID!) { donationRecorded(nonprofitId: $id) { id amount } }"
RECORD = """mutation($input: RecordDonationInput!) { recordDonation(input: $input) { id } }"""


def redis_client(served_graph: ServedGraph) -> redis.Redis:
    settings = served_graph.store_settings
    return redis.Redis(host="127.0.0.1", port=settings.falkordb_port,
                       password=settings.falkordb_secret())


def pubsub_connections(served_graph: ServedGraph) -> int:
    server = redis_client(served_graph)
    try:
        clients = server.client_list()
    finally:
        server.close()
    return sum(1 for c in clients if int(c.get("sub", 0)) + int(c.get("psub", 0)) > 0)


@pytest.fixture
def app_client(served_graph: ServedGraph, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    updates: dict[str, Any] = getattr(request, "param", {})
    settings = served_graph.app_settings.model_copy(update=updates)
    with TestClient(create_app(settings, served_graph.store_settings, TEST_AUTH),
                    client=LOOPBACK) as client:
        yield client


def subscribe(ws: Any, op: str, nonprofit_id: str) -> None:
    ws.send_json({"id": op, "type": "subscribe",
                  "payload": {"query": FEED, "variables": {"id": nonprofit_id}}})


def connect(client: TestClient, headers: dict[str, str]) -> Any:
    ws = client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"])
    socket = ws.__enter__()
    socket.send_json({"type": "connection_init", "payload": headers})
    assert socket.receive_json()["type"] == "connection_ack"
    return ws, socket


def test_many_subscriptions_share_one_pubsub_connection(
    app_client: TestClient, served_graph: ServedGraph
) -> None:
    nonprofits = served_graph.tables["nonprofits"].column("id").to_pylist()[20:26]
    donor = served_graph.tables["donors"].column("id")[70].as_py()
    before = pubsub_connections(served_graph)
    ws, socket = connect(app_client, served_graph.token(Role.ADMIN, "ops"))
    try:
        for i, nonprofit in enumerate(nonprofits):
            subscribe(socket, str(i), nonprofit)
        events = app_client.app.state.services.events
        wait_for(lambda: events.subscriber_count() == len(nonprofits))
        assert pubsub_connections(served_graph) - before == 1  # not one per subscription
        # Junk on the channel (anyone who reaches Redis can publish) is dropped, and the one
        # listener thread goes on.
        junk = redis_client(served_graph)
        channel = f"{RedisEventBus.CHANNEL_PREFIX}donation:{nonprofits[3]}"
        junk.publish(channel, b"not json")
        junk.publish(channel, b"[1, 2]")
        junk.close()
        recorded = graphql(app_client, RECORD, served_graph.token(Role.DONOR, donor),
                           input={"donorId": donor, "nonprofitId": nonprofits[3], "amount": 4})
        message = socket.receive_json()
        assert message["id"] == "3"
        assert message["payload"]["data"]["donationRecorded"]["id"] == (
            recorded["data"]["recordDonation"]["id"]
        )
    finally:
        ws.__exit__(None, None, None)


@pytest.mark.parametrize(
    "app_client",
    [{"max_subscriptions_per_socket": 1, "max_subscriptions_per_caller": 2,
      "max_subscriptions_per_process": 3}],
    indirect=True,
)
def test_subscriptions_are_capped_per_socket_caller_and_process(
    app_client: TestClient, served_graph: ServedGraph
) -> None:
    nonprofits = served_graph.tables["nonprofits"].column("id").to_pylist()[30:36]
    events = app_client.app.state.services.events
    first, first_socket = connect(app_client, served_graph.token(Role.ADMIN, "one"))
    other, other_socket = connect(app_client, served_graph.token(Role.ADMIN, "one"))
    second, second_socket = connect(app_client, served_graph.token(Role.ADMIN, "two"))
    try:
        subscribe(first_socket, "a", nonprofits[0])
        wait_for(lambda: events.subscriber_count() == 1)
        subscribe(first_socket, "a2", nonprofits[0])  # the socket's second
        refused = first_socket.receive_json()
        errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["RATE_LIMITED"]
        assert "per socket" in errors[0]["message"]

        subscribe(other_socket, "b", nonprofits[1])  # the caller's second, on another socket
        wait_for(lambda: events.subscriber_count() == 2)
        third, third_for_caller = connect(app_client, served_graph.token(Role.ADMIN, "one"))
        subscribe(third_for_caller, "c", nonprofits[2])  # the caller's third
        refused = third_for_caller.receive_json()
        third.__exit__(None, None, None)
        assert refused["id"] == "c"
        errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["RATE_LIMITED"]
        assert "per caller" in errors[0]["message"]

        subscribe(second_socket, "d", nonprofits[3])
        wait_for(lambda: events.subscriber_count() == 3)
        fourth, fourth_socket = connect(app_client, served_graph.token(Role.ADMIN, "three"))
        subscribe(fourth_socket, "e", nonprofits[4])  # the process's fourth
        refused = fourth_socket.receive_json()
        fourth.__exit__(None, None, None)
        errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["RATE_LIMITED"]
        assert "no room" in errors[0]["message"]
    finally:
        first.__exit__(None, None, None)
        other.__exit__(None, None, None)
        second.__exit__(None, None, None)
    # Closed sockets give their slots back.
    third, third_socket = connect(app_client, served_graph.token(Role.ADMIN, "one"))
    try:
        wait_for(lambda: events.subscriber_count() == 0)
        subscribe(third_socket, "f", nonprofits[5])
        wait_for(lambda: events.subscriber_count() == 1)
    finally:
        third.__exit__(None, None, None)
