"""Errors the services raise; each carries the code clients see in `extensions.code`."""


class DomainError(Exception):
    code = "INTERNAL_SERVER_ERROR"


class NotFoundError(DomainError):
    code = "NOT_FOUND"


class InvalidInputError(DomainError):
    code = "BAD_USER_INPUT"


class UnavailableError(DomainError):
    code = "UNAVAILABLE"


class ConflictError(DomainError):
    """The request contradicts what is stored (e.g. a replayed id with other content)."""

    code = "CONFLICT"
