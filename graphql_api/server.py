"""uvicorn's HTTP protocol (httptools) with a bound on the time to receive a request's headers.

uvicorn bounds a request's body (the app's 408) and an idle keep-alive connection, but not a
connection that opens and sends nothing, nor headers that trickle in a byte at a time
(slowloris): each holds a socket and its memory for as long as the client likes. Here a
connection must complete a request's headers within `header_timeout_s` of opening, or of the
previous response; otherwise it is closed (with a 408 if the request had begun).

`donor-match serve` passes the class through `graphql_api.app.uvicorn_options`; the image's
uvicorn takes it as `--http graphql_api.server:HeaderTimeoutProtocol`, reading the bound from
DONOR_MATCH_HEADER_READ_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from donor_match.settings import AppSettings

_TIMEOUT_BODY = b"request headers not received in time"
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    # None: DONOR_MATCH_HEADER_READ_TIMEOUT_S, read once (uvicorn's command line names only the
    # class); `with_header_timeout` makes a subclass with the value fixed.
    header_timeout_s: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._request_begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._request_begun = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        # Headers are in (a WebSocket upgrade too): the body has the app's own read timeout.
        self._disarm_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        # The next request's headers are due now, unless one is already queued (pipelined).
        waiting = bool(self.pipeline)
        super().on_response_complete()
        if not waiting and not self.transport.is_closing():
            self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._request_begun = False
        self._header_timer = self.loop.call_later(_timeout_of(type(self)), self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._request_begun:
            self.transport.write(TIMEOUT_RESPONSE)
        self.transport.close()


_from_environment: dict[str, float] = {}


def _timeout_of(protocol: type[HeaderTimeoutProtocol]) -> float:
    if protocol.header_timeout_s is not None:
        return protocol.header_timeout_s
    if "s" not in _from_environment:
        _from_environment["s"] = AppSettings().header_read_timeout_s
    return _from_environment["s"]


def with_header_timeout(timeout_s: float) -> type[HeaderTimeoutProtocol]:
    """The protocol with this bound (an in-process uvicorn: `serve`, tests, benchmarks)."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": timeout_s})
