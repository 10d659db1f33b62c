"""Every error leaves the API with an `extensions.code` and never a traceback or Cypher text."""

from __future__ import annotations

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from donor_match.errors import DomainError
from graph_store.errors import InvalidParameterError, StoreUnavailableError

log = logging.getLogger(__name__)
# The caller's own mistakes: anyone can send them at will, so they are logged one line each at
# info (warning for a store that is down), never at error with a traceback.
CLIENT_LEVELS = {"UNAVAILABLE": logging.WARNING}


def log_errors(errors: list[GraphQLError], _: ExecutionContext | None = None) -> None:
    """What `Schema.process_errors` logs: unexpected errors with their traceback (see
    `_code_and_message`), expected ones as one line without."""
    for error in errors:
        original = error.original_error
        if original is None or isinstance(
            original, DomainError | InvalidParameterError | StoreUnavailableError
        ) or error.message.startswith("Variable '$"):
            code, message = _code_and_message(error)
            log.log(CLIENT_LEVELS.get(code, logging.INFO), "%s: %s", code, message)
        # Unexpected errors are logged, with their traceback, where they get their code.


def _code_and_message(error: GraphQLError) -> tuple[str, str]:
    original = error.original_error
    if isinstance(original, DomainError):
        return original.code, str(original)
    if isinstance(original, InvalidParameterError):
        return "BAD_USER_INPUT", "text values must not contain NUL characters"
    if isinstance(original, StoreUnavailableError):
        return "UNAVAILABLE", "the graph store is unavailable; try again shortly"
    if error.message.startswith("Variable '$"):
        return "BAD_USER_INPUT", error.message  # a variable's value did not coerce
    if original is not None:
        log.error("unexpected error in %s", error.path, exc_info=original)
        return "INTERNAL_SERVER_ERROR", "internal error"
    # No original error: the document itself was rejected before execution.
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED", error.message
    return "GRAPHQL_VALIDATION_FAILED", error.message


class ErrorCodes(MaskErrors):
    """Rewrites each error with a stable code; unexpected ones lose their details."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda _: True)

    def _process_result(self, result: object) -> None:
        # MaskErrors' own checks a runtime-checkable Protocol first, ~7 µs a request; this is
        # the same test (an `errors` attribute, set and not empty).
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        code, message = _code_and_message(error)
        return GraphQLError(
            message=message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={**(error.extensions or {}), "code": code},
        )
