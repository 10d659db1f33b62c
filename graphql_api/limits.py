"""Limits that keep one caller from exhausting the API: cost, rate and subscriptions (the body
size limit is in graphql_api/middleware.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from donor_match.errors import InvalidInputError
from donor_match.services.auth import Principal
from donor_match.services.rate_limit import RateLimitedError, RateLimiter
from graphql_api.context import Context


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


def caller_key(context: Context) -> str:
    """Whose budget a request spends: the principal's, else the client address's."""
    caller = context.authenticated
    if isinstance(caller, Principal):
        return f"{caller.role}:{caller.subject}"
    return context.client


class SubscriptionSlots:
    """Subscriptions open at once, per socket, per caller and per process: each holds a queue
    and, for matches, a page recomputed per event. (Strawberry's own per-connection limit
    answers without a code; it stays as a backstop above this one.)"""

    def __init__(self, per_socket: int, per_caller: int, per_process: int) -> None:
        self._per_socket = per_socket
        self._per_caller = per_caller
        self._per_process = per_process
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, context: Context) -> Iterator[None]:
        # A WebSocket's operations share its context: its count there is the socket's.
        key = caller_key(context)
        with self._lock:
            if context.open_subscriptions >= self._per_socket:
                raise RateLimitedError(
                    f"at most {self._per_socket} subscriptions open at once per socket"
                )
            if self._open.get(key, 0) >= self._per_caller:
                raise RateLimitedError(
                    f"at most {self._per_caller} subscriptions open at once per caller"
                )
            if sum(self._open.values()) >= self._per_process:
                raise RateLimitedError("this server has no room for more subscriptions; retry")
            self._open[key] = self._open.get(key, 0) + 1
            context.open_subscriptions += 1
        try:
            yield
        finally:
            with self._lock:
                context.open_subscriptions -= 1
                self._open[key] -= 1
                if not self._open[key]:
                    del self._open[key]


# What a request over its budget runs instead of its own text: nothing of that text is parsed,
# validated or executed (the answer is the RATE_LIMITED error set before execution).
_LIMITED_QUERY = "query RateLimited { __typename }"


class RateLimit(SchemaExtension):
    """Spends one request of the caller's budget per operation, before its text is parsed, so
    requests that fail parsing or validation spend it too; over budget: RATE_LIMITED."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    def on_operation(self) -> Iterator[None]:
        execution = self.execution_context
        try:
            self._limiter.check(caller_key(execution.context))
        except RateLimitedError as exc:
            execution.query = _LIMITED_QUERY
            # No setter: the caller's name would select an operation the new text lacks.
            execution._provided_operation_name = None
            # A result set here makes Strawberry skip execution.
            execution.result = ExecutionResult(
                data=None, errors=[GraphQLError(str(exc), original_error=exc)]
            )
        yield


class SubscriptionsNeedWebSocket(SchemaExtension):
    """A subscription sent over plain HTTP is refused with BAD_USER_INPUT, not run as a query."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if (
            context.operation_type is OperationType.SUBSCRIPTION
            and not context.context.over_websocket
        ):
            error = InvalidInputError("subscriptions need a WebSocket (graphql-transport-ws)")
            context.result = ExecutionResult(
                data=None, errors=[GraphQLError(str(error), original_error=error)]
            )
        yield
