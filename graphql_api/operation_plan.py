"""Queries of one root field with a plain selection, run without graphql-core's executor.

A page of matches is one root field whose value a compiled completer turns into the response
(graphql_api/execution.py). What graphql-core's executor does around that for each request
(building the executor, collecting the root fields, awaiting and completing through its own
machinery) was about a quarter of the operation's CPU (docs/api-performance.md). So, per parsed
operation (the parse cache keeps documents stable), once an execution through the executor has
compiled the root field's completer, later executions coerce the variables and arguments, call
the resolver and complete its value here. Anything else takes the executor: mutations and
subscriptions, more than one root field, any directive or fragment spread at the root, a
selection that is not plain, resolve middleware.

Errors are the executor's: variable and argument errors as it reports them, and a resolver's
error located at its field, nulling the field (or, for a non-null field, the data). A value
the completer leaves to graphql-core (one that breaks its own type) sends the operation through
the executor again, which runs the resolver a second time: queries only, and only on that error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from inspect import isawaitable
from typing import Any

import strawberry
from cachetools import LRUCache
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    is_non_null_type,
    located_error,
)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.pyutils import Path
from strawberry.schema.schema import _OperationContextAwareGraphQLResolveInfo as ResolveInfo

from graphql_api.execution import NOT_PLAIN, Completer, compiled_completer, directive_variables


class _RootField:
    """One root field of an operation that may run without the executor."""

    def __init__(
        self,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        parent: GraphQLObjectType,
        node: FieldNode,
        field: GraphQLField,
    ) -> None:
        self.operation, self.fragments, self.parent = operation, fragments, parent
        self.node, self.field = node, field
        self.key = node.alias.value if node.alias else node.name.value
        self.complete: Completer | None = None  # compiled by the operation's first execution

    def ready(self) -> bool | None:
        """True once the completer is compiled, None while it is not yet, False where the
        selection is not plain."""
        if self.complete is None:
            compiled, complete = compiled_completer(self.operation, self.field.type, self.node)
            if not compiled:
                return None
            if complete is None:
                return False
            self.complete = complete
        return True

    def run(
        self,
        schema: GraphQLSchema,
        inputs: dict[str, Any] | None,
        root_value: Any,
        context_value: Any,
        is_awaitable: Callable[[Any], bool],
        operation_extensions: Any,
        again: Callable[[], Any],
    ) -> Any:
        """The operation's result (or an awaitable of it), as the executor would give it;
        `again` runs the executor, for a value the completer leaves to it."""
        variables = get_variable_values(
            schema, self.operation.variable_definitions or (), inputs or {}, max_errors=50
        )
        if isinstance(variables, list):
            return ExecutionResult(data=None, errors=variables)
        path = Path(None, self.key, self.parent.name)
        node, field = self.node, self.field
        info = ResolveInfo(
            node.name.value, [node], field.type, self.parent, path, schema, self.fragments,
            root_value, self.operation, variables.coerced, context_value, is_awaitable,
            None, None, operation_extensions,
        )
        try:
            args = get_argument_values(field, node, variables) if field.args else {}
            resolved = field.resolve(root_value, info, **args)  # type: ignore[misc]
        except Exception as error:
            return self._failed(error, path)
        if is_awaitable(resolved):
            return self._awaited(resolved, path, again)
        return self._completed(resolved, again)

    async def _awaited(self, resolved: Any, path: Path, again: Callable[[], Any]) -> Any:
        try:
            value = await resolved
        except Exception as error:
            return self._failed(error, path)
        result = self._completed(value, again)
        return await result if isawaitable(result) else result

    def _completed(self, value: Any, again: Callable[[], Any]) -> Any:
        completed = self.complete(value)  # type: ignore[misc]
        if completed is NOT_PLAIN:
            return again()
        return ExecutionResult(data={self.key: completed}, errors=None)

    def _failed(self, error: Exception, path: Path) -> ExecutionResult:
        located = located_error(error, [self.node], path.as_list())
        data = None if is_non_null_type(self.field.type) else {self.key: None}
        return ExecutionResult(data=data, errors=[located])


class OperationPlans:
    """A `_RootField` per parsed operation that qualifies, found by the document's identity."""

    def __init__(self, maxsize: int = 1024) -> None:
        # An entry keeps its document alive, so no id is reused while it is cached.
        self._plans: LRUCache[tuple[int, str | None], tuple[DocumentNode, _RootField | None]] = (
            LRUCache(maxsize)
        )
        self._lock = threading.Lock()

    def execute(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        root_value: Any = None,
        context_value: Any = None,
        variable_values: dict[str, Any] | None = None,
        operation_name: str | None = None,
        middleware: Any = None,
        is_awaitable: Any = None,
        **options: Any,
    ) -> Any:
        """graphql-core's `execute`, with the same arguments, taking a plan where one is
        ready."""

        def again() -> Any:
            return execute(
                schema, document, root_value=root_value, context_value=context_value,
                variable_values=variable_values, operation_name=operation_name,
                middleware=middleware, is_awaitable=is_awaitable, **options,
            )

        plan = self._plan(schema, document, operation_name)
        resolving = middleware is not None and getattr(middleware, "middlewares", None)
        if plan is None or resolving:
            return again()
        return plan.run(
            schema, variable_values, root_value, context_value, is_awaitable or isawaitable,
            options.get("operation_extensions"), again,
        )

    def _plan(
        self, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
    ) -> _RootField | None:
        """The document's plan where it is ready (its completer compiled)."""
        key = (id(document), operation_name)
        with self._lock:
            found = self._plans.get(key)
        if found is not None and found[0] is document:
            plan = found[1]
        else:
            plan = _root_field(schema, document, operation_name)
            with self._lock:
                self._plans[key] = (document, plan)
        if plan is None:
            return None
        ready = plan.ready()
        if ready is False:  # its selection is not plain: never ask again
            with self._lock:
                self._plans[key] = (document, None)
        return plan if ready else None


def _root_field(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> _RootField | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    named = [o for o in operations if o.name and o.name.value == operation_name]
    chosen = operations if operation_name is None else named
    if len(chosen) != 1 or chosen[0].operation != OperationType.QUERY:
        return None  # the executor reports the ambiguity, or runs what is not a query
    operation = chosen[0]
    selections: Collection[Any] = operation.selection_set.selections
    if operation.directives or directive_variables(operation, fragments) or len(selections) != 1:
        return None
    node = next(iter(selections))
    if not isinstance(node, FieldNode) or node.directives or node.name.value.startswith("__"):
        return None
    parent = schema.query_type
    if parent is None:
        return None
    field = parent.fields.get(node.name.value)
    if field is None or field.resolve is None:
        return None
    return _RootField(operation, fragments, parent, node, field)


class PlannedSchema(strawberry.Schema):
    """A Strawberry schema whose operations take their plan where one is ready."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans = OperationPlans()

    def _get_execute_function(self) -> Callable[..., Any]:
        # Strawberry's one seam for graphql-core's `execute` (pinned to its minor version).
        if self.config.enable_experimental_incremental_execution:
            return super()._get_execute_function()
        return self._plans.execute
