"""Errors raised by every store adapter, so callers never see a driver's exception types."""


class StoreError(RuntimeError):
    """A statement failed inside a reachable store (bad data, constraint violation, timeout)."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached; the message names the URI and what to run."""

    def __init__(self, uri: str, reason: str, hint: str) -> None:
        super().__init__(f"graph store {uri} is unavailable ({reason}). {hint}")
        self.uri = uri
        self.reason = reason
        self.hint = hint


class StoreForbiddenError(StoreError):
    """The store refused a statement its path does not allow: a write on a read-only path, or what
    the user's privileges do not cover."""


class InvalidParameterError(StoreError):
    """A parameter value the store cannot take (the caller's input, not the store, is wrong)."""


class StoreConflictError(StoreError):
    """A write broke a uniqueness constraint: another entity already holds the id. Adapters map
    it from the server's own error code, so callers never read message text."""
