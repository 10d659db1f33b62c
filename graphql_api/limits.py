"""Limits that keep one caller from exhausting the API: cost, rate and body size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from donor_match.errors import InvalidInputError
from donor_match.services.rate_limit import RateLimitedError, RateLimiter


def cost_rule(max_cost: int, page_size: int) -> type[ValidationRule]:
    """A rule rejecting operations whose estimated cost exceeds `max_cost`.

    Each field costs 1; a field with a `first` argument multiplies its selection by it (by
    `page_size`, the largest page, when `first` is a variable, as validation cannot see values).
    """

    class QueryCost(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self._fragments = {
                d.name.value: d.selection_set
                for d in context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            cost = self._cost(node.selection_set, set())
            if cost > max_cost:
                name = node.name.value if node.name else "anonymous"
                self.report_error(
                    GraphQLError(
                        f"operation '{name}' costs {cost}, more than the limit of {max_cost}",
                        node,
                    )
                )

        def _cost(self, selections: SelectionSetNode | None, seen: set[str]) -> int:
            total = 0
            for selection in selections.selections if selections else ():
                if isinstance(selection, FieldNode):
                    total += 1 + _multiplier(selection, page_size) * self._cost(
                        selection.selection_set, seen
                    )
                elif isinstance(selection, InlineFragmentNode):
                    total += self._cost(selection.selection_set, seen)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    if name not in seen:  # cycles are reported by the standard rules
                        total += self._cost(self._fragments.get(name), seen | {name})
            return total

    return QueryCost


def _multiplier(field: FieldNode, page_size: int) -> int:
    for argument in field.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, IntValueNode):
                return max(1, int(argument.value.value))
            return page_size
    return 1


class RateLimit(SchemaExtension):
    """Spends one request of the caller's budget per operation; over budget: RATE_LIMITED."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        caller = context.get("principal")
        key = f"{caller.role}:{caller.subject}" if hasattr(caller, "role") else context["client"]
        try:
            self._limiter.check(key)
        except RateLimitedError as exc:
            # A result set here makes Strawberry skip execution.
            self.execution_context.result = ExecutionResult(
                data=None,
                errors=[GraphQLError(str(exc), original_error=exc)],
            )
        yield


class SubscriptionsNeedWebSocket(SchemaExtension):
    """A subscription sent over plain HTTP is refused with BAD_USER_INPUT, not run as a query."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.operation_type is OperationType.SUBSCRIPTION and not isinstance(
            context.context.get("request"), WebSocket
        ):
            error = InvalidInputError("subscriptions need a WebSocket (graphql-transport-ws)")
            context.result = ExecutionResult(
                data=None, errors=[GraphQLError(str(error), original_error=error)]
            )
        yield


class BodySizeLimit:
    """Refuses request bodies over `max_bytes` with 413, counting what is actually received."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            await self._too_large(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self._max_bytes:
                raise _BodyTooLargeError
            return message

        try:
            await self._app(scope, limited_receive, send)
        except _BodyTooLargeError:
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        body = (
            b'{"errors":[{"message":"request body larger than '
            + str(self._max_bytes).encode()
            + b' bytes","extensions":{"code":"BAD_USER_INPUT"}}]}'
        )
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLargeError(Exception):
    pass
