"""graphql_api.middleware: the one ASGI layer keeps each request's phases, id, access line and
body limit (the served app's tests check them over HTTP; these drive the layer directly)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from graphql_api.middleware import RequestMiddleware
from graphql_api.observability import ApiMetrics, current_phases, request_id


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, records what the request saw, answers 200 with it."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    seen.append((request_id.get(), current_phases.get() is not None))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


seen: list[tuple[str, bool]] = []


def call(app: Any, headers: list[tuple[bytes, bytes]], parts: list[bytes | None],
         scope_type: str = "http") -> list[Message]:
    """`parts`: the body's parts in order; None: the client stalls there."""
    sent: list[Message] = []

    async def receive() -> Message:
        part = parts.pop(0) if parts else b""
        if part is None:
            await asyncio.sleep(10)
        return {"type": "http.request", "body": part, "more_body": bool(parts)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": scope_type, "method": "POST", "path": "/graphql", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent


def layer(server_timing: bool = True) -> tuple[RequestMiddleware, ApiMetrics]:
    metrics = ApiMetrics()
    return RequestMiddleware(echo, metrics.runtime, max_bytes=10, read_timeout_s=0.2,
                             server_timing=server_timing), metrics


def headers_of(message: Message) -> dict[bytes, bytes]:
    return dict(message["headers"])


def test_a_request_gets_its_id_phases_and_access_line(caplog: pytest.LogCaptureFixture) -> None:
    seen.clear()
    app, metrics = layer()
    with caplog.at_level(logging.INFO, logger="donor_match.access"):
        sent = call(app, [(b"x-request-id", b"abc"), (b"content-length", b"5")], [b"hello"])
    start = headers_of(sent[0])
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"hello"
    assert start[b"x-request-id"] == b"abc"
    assert start[b"server-timing"].startswith(b"total;dur=")
    assert list(start) == [b"x-request-id", b"server-timing"]
    assert seen == [("abc", True)]
    line = next(r for r in caplog.records if r.name == "donor_match.access")
    assert (line.status, line.request_id, line.path) == (200, "abc", "/graphql")  # type: ignore[attr-defined]
    assert request_id.get() == "-" and current_phases.get() is None
    counted = {s.name: s.value for f in metrics.registry.collect() for s in f.samples}
    assert counted["donor_match_worker_requests_total"] == 1
    assert counted["donor_match_worker_requests_in_flight"] == 0


def test_a_bad_request_id_is_replaced_and_timing_is_off_unless_asked() -> None:
    app, _ = layer(server_timing=False)
    start = headers_of(call(app, [(b"x-request-id", b"bad\nid")], [b"{}"])[0])
    assert len(start[b"x-request-id"]) == 32 and b"server-timing" not in start


@pytest.mark.parametrize(
    ("headers", "parts", "status"),
    [
        ([(b"content-length", b"11")], [b"x" * 11], 413),  # declared
        ([], [b"x" * 6, b"x" * 6], 413),  # counted as it arrives
        ([], [b"x", None], 408),  # stalled
    ],
)
def test_bodies_over_the_limit_or_stalled_are_refused(
    headers: list[tuple[bytes, bytes]], parts: list[bytes | None], status: int
) -> None:
    app, _ = layer()
    sent = call(app, [(b"x-request-id", b"r1"), *headers], parts)
    assert sent[0]["status"] == status
    assert headers_of(sent[0])[b"x-request-id"] == b"r1"
    assert b"server-timing" in headers_of(sent[0])
    assert b"BAD_USER_INPUT" in sent[1]["body"]


def test_a_websocket_gets_an_id_and_no_phases() -> None:
    got: list[tuple[str, bool]] = []

    async def ws(scope: Scope, receive: Receive, send: Send) -> None:
        got.append((request_id.get(), current_phases.get() is not None))

    metrics = ApiMetrics()
    app = RequestMiddleware(ws, metrics.runtime, max_bytes=10)
    call(app, [(b"x-request-id", b"w1")], [], scope_type="websocket")
    assert got == [("w1", False)]
