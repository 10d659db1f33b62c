"""Errors raised by every store adapter, so callers never see a driver's exception types.

Each adapter maps its driver's failures onto this hierarchy from codes and exception types (as
httpx maps transport errors), once, in one place: callers choose what to do by the type, and
read `detail` for the server's own diagnosis, never the message text.

    StoreError                   a statement failed inside a reachable store
    ├── StoreUnavailableError    the store cannot be reached (down, refused, stalled)
    ├── StoreTimeoutError        a statement ran past the configured timeout
    ├── StoreConflictError       a write broke a uniqueness constraint
    ├── StoreForbiddenError      a write on a read-only path, or beyond the user's privileges
    └── InvalidParameterError    a parameter value the store cannot take
"""


class StoreError(RuntimeError):
    """A statement failed inside a reachable store (bad data, a syntax error the server names).

    `detail` is the server's own diagnosis (its code and first line), without the store's URI or
    the statement's name, for callers that pass it on (an analyst's failed query).
    """

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = message if detail is None else detail


class StoreUnavailableError(StoreError):
    """The store cannot be reached; the message names the URI and what to run."""

    def __init__(self, uri: str, reason: str, hint: str) -> None:
        super().__init__(f"graph store {uri} is unavailable ({reason}). {hint}", detail=reason)
        self.uri = uri
        self.reason = reason
        self.hint = hint


class StoreTimeoutError(StoreError):
    """A statement ran past the store's configured timeout; the server stopped it."""


class StoreForbiddenError(StoreError):
    """The store refused a statement its path does not allow: a write on a read-only path, or what
    the user's privileges do not cover."""


class InvalidParameterError(StoreError):
    """A parameter value the store cannot take (the caller's input, not the store, is wrong)."""


class StoreConflictError(StoreError):
    """A write broke a uniqueness constraint: another entity already holds the id. Adapters map
    it from the server's own error code, so callers never read message text."""
