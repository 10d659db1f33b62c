"""The API under abuse: rate limits that invalid requests spend too, bounded /metrics, odd JSON,
odd WebSocket frames, slow bodies, quiet logs for the caller's own mistakes, odd ids."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from conftest import LOOPBACK, TEST_AUTH, ServedGraph, error_codes, free_port, graphql
from pydantic import SecretStr
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from donor_match.services.auth import Role
from donor_match.settings import AppSettings
from entrypoints.asgi import create_app, uvicorn_options
from graph_store import StoreSettings
from graphql_api.observability import MAX_OPERATION_LABELS

REMOTE = ("203.0.113.9", 50000)  # a documentation address: anyone on the network
RECORD = """mutation($input: RecordDonationInput!) { recordDonation(input: $input) { id } }"""


@pytest.fixture(scope="module")
def client(served_graph: ServedGraph) -> Iterator[TestClient]:
    app = create_app(served_graph.app_settings, served_graph.store_settings, TEST_AUTH)
    with TestClient(app, client=LOOPBACK) as test_client:
        yield test_client


def test_invalid_requests_spend_the_rate_limit_too(served_graph: ServedGraph) -> None:
    settings = served_graph.app_settings.model_copy(update={"rate_limit_per_minute": 3})
    app = create_app(settings, served_graph.store_settings, TEST_AUTH)
    with TestClient(app) as limited:
        for _ in range(3):
            assert error_codes(graphql(limited, "{ noSuchField }")) == [
                "GRAPHQL_VALIDATION_FAILED"
            ]
        assert error_codes(graphql(limited, "{ causes { id } }")) == ["RATE_LIMITED"]
        assert error_codes(graphql(limited, "{ still broken")) == ["RATE_LIMITED"]


def test_operation_names_cannot_grow_metrics_without_bound(client: TestClient) -> None:
    for i in range(MAX_OPERATION_LABELS + 20):
        graphql(client, f"query Op{i}x{uuid.uuid4().hex} {{ causes {{ id }} }}")
    graphql(client, 'query Bad { causes { id } }', **{})
    text = client.get("/metrics").text
    labels = {line.split('operation="', 1)[1].split('"', 1)[0] for line in text.splitlines()
              if line.startswith("donor_match_graphql_request_duration_seconds_count{")}
    assert len(labels) <= MAX_OPERATION_LABELS + 2  # + "other" and "anonymous"
    assert "other" in labels


def test_metrics_are_not_public(served_graph: ServedGraph, client: TestClient) -> None:
    assert client.get("/metrics").status_code == 200  # loopback: the operator, a sidecar
    settings = served_graph.app_settings.model_copy(
        update={"metrics_token": SecretStr("scrape-secret")}
    )
    app = create_app(settings, served_graph.store_settings, TEST_AUTH)
    with TestClient(app, client=REMOTE) as remote:
        refused = remote.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert remote.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        scraped = remote.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert scraped.status_code == 200 and "donor_match_store_up" in scraped.text


def test_deeply_nested_json_is_bad_input(client: TestClient, served_graph: ServedGraph) -> None:
    nested: Any = 1
    for _ in range(400):
        nested = [nested]
    response = client.post(
        "/graphql", headers=served_graph.token(Role.ANALYST, "ana"),
        json={"query": "query($p: JSON) { analyticsQuery(cypher: \"RETURN 1 AS one\", "
              "params: $p) { rows } }", "variables": {"p": {"x": nested}}},
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "nested deeper than 32" in error["message"]


def subscribe_socket(client: TestClient, served_graph: ServedGraph) -> Any:
    ws = client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"])
    socket = ws.__enter__()
    socket.send_json({"type": "connection_init", "payload": served_graph.token(Role.ADMIN, "a")})
    assert socket.receive_json()["type"] == "connection_ack"
    return ws, socket


@pytest.mark.parametrize("frame", ["not json at all", "[1, 2]", "x" * 70_000])
def test_a_bad_websocket_frame_closes_with_4400_without_a_traceback(
    client: TestClient, served_graph: ServedGraph, caplog: pytest.LogCaptureFixture, frame: str
) -> None:
    ws, socket = subscribe_socket(client, served_graph)
    with caplog.at_level(logging.INFO):
        socket.send_text(frame)
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        ws.__exit__(None, None, None)
    assert closed.value.code == 4400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_the_callers_own_mistakes_are_logged_without_tracebacks(
    client: TestClient, served_graph: ServedGraph, caplog: pytest.LogCaptureFixture
) -> None:
    donor, other = served_graph.tables["donors"].column("id").to_pylist()[60:62]
    query = "query($d: ID!) { matches(donorId: $d, first: 1) { rank } }"
    with caplog.at_level(logging.INFO):
        forbidden = graphql(client, query, served_graph.token(Role.DONOR, donor), d=other)
        unauthenticated = graphql(client, query, {"Authorization": "Bearer forged"}, d=donor)
    assert error_codes(forbidden) == ["FORBIDDEN"]
    assert error_codes(unauthenticated) == ["UNAUTHENTICATED"]
    logged = [r for r in caplog.records if r.name.startswith(("strawberry", "graphql_api"))]
    assert {r.getMessage().split(":")[0] for r in logged} >= {"FORBIDDEN", "UNAUTHENTICATED"}
    assert all(r.levelno <= logging.WARNING and not r.exc_info for r in logged)


def test_a_stalled_request_body_is_answered_408(served_graph: ServedGraph) -> None:
    settings = served_graph.app_settings.model_copy(update={"body_read_timeout_s": 0.2})
    app = create_app(settings, served_graph.store_settings, TEST_AUTH)
    sent: list[dict[str, Any]] = []
    parts = iter([{"type": "http.request", "body": b'{"query": "{ cau', "more_body": True}])

    async def receive() -> dict[str, Any]:
        part = next(parts, None)
        if part is None:
            await anyio.sleep(30)  # the client never sends the rest
            return {"type": "http.disconnect"}
        return part

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/graphql", "raw_path": b"/graphql",
             "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
             "headers": [(b"content-type", b"application/json")],
             "client": LOOPBACK, "server": ("127.0.0.1", 8000)}
    started = time.monotonic()
    with TestClient(app):  # runs the lifespan (store, model)
        anyio.run(app, scope, receive, send)
    assert time.monotonic() - started < 10
    assert sent[0]["status"] == 408


@pytest.mark.parametrize("bad", ["gift\u200b1", "\u202egift", "gift\u2066x\u2069", "a\u2028b"])
def test_ids_refuse_invisible_format_and_bidi_characters(
    client: TestClient, served_graph: ServedGraph, bad: str
) -> None:
    donor = served_graph.tables["donors"].column("id")[62].as_py()
    nonprofit = served_graph.tables["nonprofits"].column("id")[0].as_py()
    answer = graphql(client, RECORD, served_graph.token(Role.DONOR, donor),
                     input={"donorId": donor, "nonprofitId": nonprofit, "amount": 1, "id": bad})
    assert error_codes(answer) == ["BAD_USER_INPUT"]
    assert "invisible" in answer["errors"][0]["message"]


def test_forwarded_for_is_trusted_only_from_the_configured_ingress(
    served_graph: ServedGraph,
) -> None:
    """A real uvicorn with the options `donor-match serve` uses: X-Forwarded-For from a client
    that is not the ingress does not pick the client's rate-limit key."""
    settings = served_graph.app_settings.model_copy(
        update={"rate_limit_per_minute": 3, "forwarded_allow_ips": "10.9.8.7"}
    )
    app = create_app(settings, served_graph.store_settings, TEST_AUTH)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, **uvicorn_options(settings)
    ))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        codes = []
        for i in range(5):
            response = httpx.post(f"http://127.0.0.1:{port}/graphql",
                                  json={"query": "{ causes { id } }"},
                                  headers={"X-Forwarded-For": f"198.51.100.{i}"}, timeout=10)
            codes.append(error_codes(response.json()))
    finally:
        server.should_exit = True
        thread.join(30)
    assert codes[:3] == [[], [], []]
    assert codes[3:] == [["RATE_LIMITED"], ["RATE_LIMITED"]]


@contextmanager
def real_uvicorn(app: Any, settings: Any) -> Iterator[int]:
    """The app under a real uvicorn with `donor-match serve`'s options; yields its port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, **uvicorn_options(settings)
    ))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


def _closed_after(sock: socket.socket, trickle: bytes, limit_s: float) -> tuple[float, bytes]:
    """Send `trickle` a byte every 0.1 s (a slowloris) until the server closes the connection;
    the seconds that took and what the server sent. Fails past `limit_s`."""
    started, answer = time.monotonic(), b""
    sock.setblocking(False)
    for byte in itertools.cycle(trickle):
        assert time.monotonic() - started < limit_s, "the connection stayed open"
        try:
            sock.send(bytes([byte]))
        except OSError:
            break
        time.sleep(0.1)
        try:
            chunk = sock.recv(4096)
        except BlockingIOError:
            continue
        except OSError:
            break
        answer += chunk
        if not chunk:
            break
    return time.monotonic() - started, answer


def test_slow_headers_are_cut_off(tmp_path: Path) -> None:
    """Headers sent a byte at a time, and a connection that sends nothing, are closed once
    DONOR_MATCH_HEADER_READ_TIMEOUT_S passes; requests that send theirs at once are served, on
    the same keep-alive connection too. (No store or model needed: /healthz answers without.)"""
    settings = AppSettings(models_dir=tmp_path / "models", header_read_timeout_s=1.0)
    app = create_app(settings, StoreSettings(falkordb_port=free_port()), TEST_AUTH)
    with real_uvicorn(app, settings) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            took, answer = _closed_after(
                sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: a" * 1000, 6.0)
        assert 0.9 < took < 2.5
        assert answer.startswith(b"HTTP/1.1 408 ")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            started = time.monotonic()
            assert sock.recv(4096) == b""  # nothing sent: closed without an answer
            assert 0.9 < time.monotonic() - started < 2.5
        # Keep-alive: after a response, the next request's headers are bounded again.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for _ in range(2):
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.6)  # together past the bound: each request's own bound counts
                assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
            took, answer = _closed_after(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", 6.0)
        assert took < 2.5
        # Honest clients are not affected.
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200


def test_idle_keep_alive_connections_outlast_the_header_bound(tmp_path: Path) -> None:
    """An idle keep-alive connection is kept DONOR_MATCH_KEEP_ALIVE_TIMEOUT_S after its last
    response, past the header bound (which runs from a request's first byte), and is then
    closed: a proxy that reuses its idle connections for longer than uvicorn's 5 s must not
    find one closed under it."""
    settings = AppSettings(
        models_dir=tmp_path / "models", header_read_timeout_s=0.5, keep_alive_timeout_s=2.0
    )
    app = create_app(settings, StoreSettings(falkordb_port=free_port()), TEST_AUTH)
    with (
        real_uvicorn(app, settings) as port,
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
    ):
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
        time.sleep(1.2)  # idle past the header bound
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")  # the same connection
        started = time.monotonic()
        assert sock.recv(4096) == b""  # closed once idle for the keep-alive bound
        assert 1.5 < time.monotonic() - started < 3.5
