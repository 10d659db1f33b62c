"""uvicorn's HTTP protocol (httptools) with two bounds on a connection's time.

- Headers: uvicorn bounds a request's body (the app's 408) but not a connection that opens and
  sends nothing, nor headers that trickle in a byte at a time (slowloris): each would hold a
  socket and its memory for as long as the client likes. Here a request's headers must be
  complete within `header_timeout_s` of the connection opening or of the request's first byte;
  otherwise the connection is closed (with a 408 if the request had begun).
- Idle keep-alive: `keep_alive_s` rather than uvicorn's 5 s. A proxy in front (nginx,
  a cloud load balancer) keeps idle connections for 60 s and more; where the server closes one
  first, a request the proxy sends on it as the close arrives fails (a 502 to its caller). So
  the server's bound must be the longer one.

`donor-match serve` passes the class through `entrypoints.asgi.uvicorn_options`; the image's
uvicorn takes it as `--http graphql_api.server:BoundedHttpProtocol`, reading the bounds from
DONOR_MATCH_HEADER_READ_TIMEOUT_S and DONOR_MATCH_KEEP_ALIVE_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from donor_match.settings import AppSettings

_TIMEOUT_BODY = b"request headers not received in time"
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class BoundedHttpProtocol(HttpToolsProtocol):
    # None: the environment's (AppSettings), read once (uvicorn's command line names only the
    # class); `with_timeouts` makes a subclass with the values fixed.
    header_timeout_s: float | None = None
    keep_alive_s: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        header_timeout_s, keep_alive_s = _timeouts_of(type(self))
        self._header_timeout_s = header_timeout_s
        # uvicorn's idle timer reads it after each response (its annotation says int; the
        # timer's call_later takes any number of seconds).
        self.timeout_keep_alive = keep_alive_s  # type: ignore[assignment]
        self._header_timer: asyncio.TimerHandle | None = None
        self._request_begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        # A request's first byte: its headers are due from here (or from the connection's
        # opening, for its first request), not from the previous response, so an idle
        # keep-alive connection is uvicorn's idle timer's alone.
        if self._header_timer is None:
            self._arm_header_timer()
        self._request_begun = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        # Headers are in (a WebSocket upgrade too): the body has the app's own read timeout.
        self._disarm_header_timer()
        super().on_headers_complete()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._request_begun = False
        self._header_timer = self.loop.call_later(self._header_timeout_s, self._headers_late)

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


@functools.cache
def _environment_timeouts() -> tuple[float, float]:
    settings = AppSettings()
    return settings.header_read_timeout_s, settings.keep_alive_timeout_s


def _timeouts_of(protocol: type[BoundedHttpProtocol]) -> tuple[float, float]:
    header_timeout_s, keep_alive_s = protocol.header_timeout_s, protocol.keep_alive_s
    if header_timeout_s is None or keep_alive_s is None:
        from_environment = _environment_timeouts()
        header_timeout_s = from_environment[0] if header_timeout_s is None else header_timeout_s
        keep_alive_s = from_environment[1] if keep_alive_s is None else keep_alive_s
    return header_timeout_s, keep_alive_s


def with_timeouts(header_timeout_s: float, keep_alive_s: float) -> type[BoundedHttpProtocol]:
    """The protocol with these bounds (an in-process uvicorn: `serve`, tests, benchmarks)."""
    return type(
        "BoundedHttpProtocol", (BoundedHttpProtocol,),
        {"header_timeout_s": header_timeout_s, "keep_alive_s": keep_alive_s},
    )
