"""The API's own ASGI layer: request phases, request ids with the access log, and the body size
limit, in one layer rather than three (issue 22: each layer was another coroutine, another
`send` wrapper and another scan of the headers for every request)."""

from __future__ import annotations

import asyncio
import logging
import os
import time

import orjson
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphql_api.observability import (
    RequestPhases,
    RuntimeMetrics,
    access_log,
    current_phases,
    new_request_id,
    request_id,
    server_timing_header,
)


class RequestMiddleware:
    """For every HTTP request, outermost in the app:
    - its phases (`RequestPhases`), kept as metrics when slow, with requests per worker process
      counted and, with `server_timing`, the phases sent back in a `Server-Timing` header (the
      load benchmark reads it; off in production, where it would tell callers about the
      server's internals);
    - an id (the caller's `X-Request-ID` or a new one), echoed back and attached to every log
      line written while serving it, and one access log line (WebSockets get these too);
    - bodies over `max_bytes` refused with 413, counting what is actually received, and bodies
      that stall for `read_timeout_s` between two parts with 408 (a slow client must not hold a
      connection and a request's worth of memory for as long as it likes)."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: RuntimeMetrics,
        max_bytes: int,
        read_timeout_s: float = 10.0,
        server_timing: bool = False,
    ) -> None:
        self._app = app
        self._metrics = metrics
        self._max_bytes = max_bytes
        self._read_timeout_s = read_timeout_s
        self._server_timing = server_timing
        self._too_large = f"request body larger than {max_bytes} bytes"
        worker = str(os.getpid())
        self._requests = metrics.worker_requests.labels(worker)
        self._in_flight = metrics.worker_in_flight.labels(worker)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._requests.inc()
        self._in_flight.inc()
        phases = RequestPhases(time.perf_counter())
        phases_token = current_phases.set(phases)
        given, declared = b"", None
        for name, value in scope.get("headers") or ():  # the last of repeated headers counts
            if name == b"x-request-id":
                given = value
            elif name == b"content-length":
                declared = value
        rid = _request_id(given)
        id_token = request_id.set(rid)
        started, status = time.perf_counter(), 0
        finished: dict[str, float] | None = None
        total = 0.0

        async def send_wrapped(message: Message) -> None:
            nonlocal status, finished, total
            if message["type"] == "http.response.start":
                status = message["status"]
                # Appended as they are: the app sets neither, so there is nothing to replace.
                headers = message["headers"] = list(message.get("headers", ()))
                headers.append((b"x-request-id", rid.encode("latin-1")))
                if finished is None:
                    now = time.perf_counter()
                    total = now - phases.started
                    finished = phases.finish(now)
                    if self._server_timing:
                        timing = server_timing_header(finished, total)
                        headers.append((b"server-timing", timing.encode("latin-1")))
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            try:
                # asyncio's own timeout: a third of anyio.fail_after's cost (~9 µs a receive);
                # the API serves on asyncio only (uvicorn, and Starlette's test client).
                async with asyncio.timeout(self._read_timeout_s):
                    message = await receive()
            except TimeoutError:
                raise _BodyTooSlowError from None
            received += len(message.get("body", b""))
            if received > self._max_bytes:
                raise _BodyTooLargeError
            return message

        too_large = self._too_large
        try:
            if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
                await _refuse(send_wrapped, 413, too_large)
                return
            try:
                await self._app(scope, limited_receive, send_wrapped)
            except _BodyTooLargeError:
                await _refuse(send_wrapped, 413, too_large)
            except _BodyTooSlowError:
                await _refuse(
                    send_wrapped, 408,
                    f"request body stalled for {self._read_timeout_s:g} s; send it at once",
                )
        finally:
            _log_access(scope, status, started, rid)
            request_id.reset(id_token)
            self._in_flight.dec()
            current_phases.reset(phases_token)
            if finished is not None:
                self._metrics.record(finished, total)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = b""
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                given = value
        rid = _request_id(given)
        token = request_id.set(rid)
        started, status = time.perf_counter(), 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            _log_access(scope, status, started, rid)
            request_id.reset(token)


def _request_id(given: bytes) -> str:
    text = given.decode("latin-1")
    return text if 0 < len(text) <= 128 and text.isprintable() else new_request_id()


def _log_access(scope: Scope, status: int, started: float, rid: str) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return  # its fields are not worth computing for every request when nobody keeps them
    access_log.info(
        "request",
        extra={
            "method": scope.get("method", "WS"),
            "path": scope["path"],
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "request_id": rid,
        },
    )


async def _refuse(send: Send, status: int, message: str) -> None:
    body = orjson.dumps(
        {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]}
    )
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class _BodyTooLargeError(Exception):
    pass


class _BodyTooSlowError(Exception):
    pass
