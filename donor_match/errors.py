"""Errors the services raise; each carries the code clients see in `extensions.code`."""


class DomainError(Exception):
    code = "INTERNAL_SERVER_ERROR"


class NotFoundError(DomainError):
    code = "NOT_FOUND"


class InvalidInputError(DomainError):
    code = "BAD_USER_INPUT"


class UnavailableError(DomainError):
    code = "UNAVAILABLE"
