"""GraphQL execution with a short path for plain fields.

A page of 20 matches is ~260 fields in ~90 objects, nearly all of them read straight off a
Strawberry object (`score`, `nonprofit { name }`, `reasons { sharedCauses { id } }`).
graphql-core runs each field through its whole machinery: a resolve-info object, argument
coercion, Strawberry's resolver wrapper, awaitable checks, the type dispatch of
`complete_value`, and per object the sub-field collection and a path; that was most of a page's
GraphQL cost in the load benchmark (bench/api_load.py).

A field is plain when its resolver is Strawberry's one for a basic field (no resolver function,
permission or field extension: it reads an attribute and needs no resolve info) and it takes no
arguments. Where a value's type and selection hold only plain fields, through lists, non-null
wrappers and objects without `is_type_of`, down to scalars and enums, `PlainFieldExecution`
completes it with a completer for that type and selection: it reads the attributes and coerces
the leaves as graphql-core would. Completers are compiled once per type and selection, and
shared by every execution of one cached document. Anything else takes graphql-core's own path:
abstract types, `@defer`, and any value that would be an error (null for a non-null type, a
value a scalar refuses, a list that is not one, an attribute that is missing), which
graphql-core then reports as it always does (plain fields only read attributes, so reading
again is harmless). Schema extensions that hook `resolve` run as graphql-core middleware: with
any, every field takes the full path.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from inspect import isawaitable
from operator import attrgetter
from typing import Any

from cachetools import LRUCache
from graphql import (
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    VariableNode,
    Visitor,
    is_leaf_type,
    visit,
)
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql_api.observability import current_phases

_NOT_PLAIN: Any = object()  # what a completer returns for a value it leaves to graphql-core

Completer = Callable[[Any], Any]  # a resolved value -> its completed value, or _NOT_PLAIN

# Per field definition (they live as long as their schema): how to read a plain field from its
# source, or None for any other field. Keyed by id, the field kept beside it.
_READERS: dict[int, tuple[GraphQLField, Callable[[Any], Any] | None]] = {}

# Completers shared by executions of the same operation object (Strawberry's parser cache hands
# every request with the same text the same document) where the variables its directives read
# (`@include(if: $x)`) have the same values: compiling them was a tenth of a page's execution.
# Keyed by the ids of the operation and of the field nodes; an entry keeps its operation, and
# with it those nodes, alive, so no id is reused while it is cached.
_SHARED: LRUCache[tuple[Any, ...], tuple[OperationDefinitionNode, Completer | None]] = LRUCache(
    maxsize=4096
)
_DIRECTIVE_VARIABLES: LRUCache[int, tuple[OperationDefinitionNode, tuple[str, ...]]] = LRUCache(
    maxsize=1024
)
_SHARED_LOCK = threading.Lock()


class PlainFieldExecution(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per output type and selection (graphql-core's collected field lists, which it keeps
        # for the whole execution): the completer, or None where the selection is not plain.
        self._completers: dict[tuple[GraphQLOutputType, int], tuple[Any, Completer | None]] = {}
        self._scope = self._operation_scope()

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: Any,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        complete = self._completer(return_type, field_details_list)
        if complete is not None:
            completed = complete(result)
            if completed is not _NOT_PLAIN:
                return completed
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        # A plain field of an object that is not plain as a whole (one of its fields has a
        # resolver): read and complete it here rather than through a resolve info and coercion.
        node = field_details_list[0].node
        field_def = self.schema.get_field(parent_type, node.name.value)
        read = plain_reader(field_def) if field_def is not None else None
        if read is not None and not node.arguments:
            complete = self._completer(field_def.type, field_details_list)  # type: ignore[union-attr]
            if complete is not None:
                completed = complete(_read(read, source))
                if completed is not _NOT_PLAIN:
                    return completed
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _completer(self, return_type: GraphQLOutputType, fields: Any) -> Completer | None:
        key = (return_type, id(fields))
        cached = self._completers.get(key)
        if cached is None:
            cached = (fields, self._shared_completer(return_type, fields))
            self._completers[key] = cached  # the list kept alive, so its id is not reused
        return cached[1]

    def _shared_completer(self, return_type: GraphQLOutputType, fields: Any) -> Completer | None:
        # Strawberry always passes a middleware manager; it holds the extensions hooking
        # `resolve`, which must see every field.
        if self.middleware_manager and self.middleware_manager.middlewares:
            return None
        scope = self._scope
        if scope is None or any(f.fragment_variable_values for f in fields):
            return self._compile(return_type, fields)
        key = (scope, return_type, tuple(id(f.node) for f in fields))
        with _SHARED_LOCK:
            shared = _SHARED.get(key)
        if shared is None:
            shared = (self.operation, self._compile(return_type, fields))
            with _SHARED_LOCK:
                _SHARED[key] = shared
        return shared[1]

    def _operation_scope(self) -> tuple[int, tuple[Any, ...]] | None:
        """What a shared completer depends on beyond its type and field nodes: the operation
        and the values of the variables its directives read; None where those are not
        hashable (the completers are then this execution's own)."""
        operation = self.operation
        with _SHARED_LOCK:
            known = _DIRECTIVE_VARIABLES.get(id(operation))
        if known is None or known[0] is not operation:
            known = (operation, _directive_variables(operation, self.fragment_definitions))
            with _SHARED_LOCK:
                _DIRECTIVE_VARIABLES[id(operation)] = known
        values = tuple(self.variable_values.coerced.get(name) for name in known[1])
        try:
            hash(values)
        except TypeError:
            return None
        return id(operation), values

    def _compile(self, return_type: GraphQLOutputType, fields: Any) -> Completer | None:
        if isinstance(return_type, GraphQLNonNull):
            return _non_null(self._compile(return_type.of_type, fields))
        if isinstance(return_type, GraphQLList):
            return _list_of(self._compile(return_type.of_type, fields))
        if isinstance(return_type, GraphQLObjectType):
            return self._compile_object(return_type, fields)
        if is_leaf_type(return_type):
            return _leaf(return_type)  # type: ignore[arg-type]
        return None  # interfaces and unions

    def _compile_object(self, object_type: GraphQLObjectType, fields: Any) -> Completer | None:
        if object_type.is_type_of is not None:
            return None
        grouped, defers, forbidden = self.collect_subfields(object_type, fields)
        if defers or forbidden:
            return None
        members: list[tuple[str, Callable[[Any], Any], Completer, int]] = []
        for name, field_fields in grouped.items():
            node = field_fields[0].node
            if node.name.value == "__typename":
                members.append((name, lambda _: object_type.name, _same, _NO_SHORTCUT))
                continue
            field_def = self.schema.get_field(object_type, node.name.value)
            if field_def is None:
                continue  # graphql-core leaves it out too
            read = plain_reader(field_def)
            complete = self._compile(field_def.type, field_fields) if read else None
            if read is None or complete is None or node.arguments:
                return None
            members.append((name, read, complete, _shortcut(field_def.type)))

        # Built-in scalars' values that their completers return unchanged are checked here,
        # inline: a page is mostly such leaves, and their completers' calls were most of it.
        def complete_object(value: Any) -> Any:
            if value is None:
                return None
            if isinstance(value, Exception):
                return _NOT_PLAIN
            result = {}
            for name, read, complete, shortcut in members:
                try:
                    field = read(value)
                except Exception:  # graphql-core's path reads it again and reports it
                    return _NOT_PLAIN
                kind = type(field)
                if shortcut and (
                    (kind is str and shortcut == _STR)
                    or (kind is float and shortcut == _FLOAT and math.isfinite(field))
                    or (kind is int and shortcut == _INT and -(2**31) <= field < 2**31)
                    or (kind is bool and shortcut == _BOOL)
                ):
                    result[name] = field
                    continue
                completed = complete(field)
                if completed is _NOT_PLAIN:
                    return _NOT_PLAIN
                result[name] = completed
            return result

        return complete_object


class _DirectiveVariableNames(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self._depth = 0

    def enter_directive(self, *_: Any) -> None:
        self._depth += 1

    def leave_directive(self, *_: Any) -> None:
        self._depth -= 1

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        if self._depth:
            self.names.add(node.name.value)


def _directive_variables(operation: OperationDefinitionNode, fragments: dict[str, Any]) -> tuple[
    str, ...
]:
    """The variables read by directives in the operation or any fragment of its document."""
    visitor = _DirectiveVariableNames()
    for node in (operation, *fragments.values()):
        visit(node, visitor)
    return tuple(sorted(visitor.names))


def _read(read: Callable[[Any], Any], source: Any) -> Any:
    try:
        return read(source)
    except Exception:  # graphql-core's path reads it again and reports it where it belongs
        return _NOT_PLAIN


def _same(value: Any) -> Any:
    return value


def _non_null(inner: Completer | None) -> Completer | None:
    if inner is None:
        return None

    def complete_non_null(value: Any) -> Any:
        completed = inner(value)
        return _NOT_PLAIN if completed is None else completed

    return complete_non_null


def _list_of(inner: Completer | None) -> Completer | None:
    if inner is None:
        return None

    def complete_list(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            return _NOT_PLAIN  # graphql-core takes other iterables, and refuses strings
        items = []
        for item in value:
            completed = inner(item)
            if completed is _NOT_PLAIN:
                return _NOT_PLAIN
            items.append(completed)
        return items

    return complete_list


def _finite_float(value: Any) -> bool:
    return type(value) is float and math.isfinite(value)


def _int32(value: Any) -> bool:
    return type(value) is int and -(2**31) <= value < 2**31


# Values the built-in scalars return unchanged (graphql.type.scalars): checked first, so most
# leaves skip the scalar's own coercion.
_UNCHANGED: dict[GraphQLLeafType, Callable[[Any], bool]] = {
    GraphQLString: lambda value: type(value) is str,
    GraphQLID: lambda value: type(value) is str,
    GraphQLBoolean: lambda value: type(value) is bool,
    GraphQLFloat: _finite_float,
    GraphQLInt: _int32,
}


_NO_SHORTCUT, _STR, _FLOAT, _INT, _BOOL = range(5)
_SHORTCUTS: dict[GraphQLLeafType, int] = {
    GraphQLString: _STR, GraphQLID: _STR, GraphQLFloat: _FLOAT, GraphQLInt: _INT,
    GraphQLBoolean: _BOOL,
}


def _shortcut(field_type: GraphQLOutputType) -> int:
    """For a (non-null) built-in scalar, which values `complete_object` may take as they are:
    those `_UNCHANGED` lets through, which its completer would return unchanged too."""
    if isinstance(field_type, GraphQLNonNull):
        field_type = field_type.of_type
    return _SHORTCUTS.get(field_type, _NO_SHORTCUT)  # type: ignore[arg-type]


def _leaf(leaf: GraphQLLeafType) -> Completer:
    unchanged = _UNCHANGED.get(leaf)
    coerce = leaf.coerce_output_value

    def complete_leaf(value: Any) -> Any:
        if value is None:
            return None
        if unchanged is not None and unchanged(value):
            return value
        if isinstance(value, Exception):
            return _NOT_PLAIN
        try:
            coerced = coerce(value)
        except (GraphQLError, TypeError, ValueError):
            return _NOT_PLAIN  # graphql-core reports it as a field error
        return _NOT_PLAIN if coerced is Undefined or coerced is None else coerced

    return complete_leaf


def plain_reader(field_def: GraphQLField) -> Callable[[Any], Any] | None:
    """How to read the field from its source where it is plain: no arguments, and Strawberry's
    resolver for a basic field (marked `_is_default`, which alone also marks the wrappers of
    fields with permissions or extensions); None for any other field."""
    cached = _READERS.get(id(field_def))
    if cached is not None and cached[0] is field_def:
        return cached[1]
    resolve = field_def.resolve
    read: Callable[[Any], Any] | None = None
    if (
        resolve is not None
        and getattr(resolve, "_is_default", False)
        and getattr(resolve, "__name__", "") == "_get_basic_result"
        and not field_def.args
    ):
        definition = field_def.extensions.get("strawberry-definition")
        if definition is not None and definition.default_resolver is getattr:
            read = attrgetter(definition.python_name)
        else:
            read = lambda source: resolve(source, None)  # noqa: E731
    _READERS[id(field_def)] = (field_def, read)
    return read


def time_resolvers(schema: GraphQLSchema) -> None:
    """Wrap every field that has a resolver of its own (not a plain field: those stay on the
    short path above) so its wall time, less the store and queueing time inside it, is the
    request's `resolver:<Type.field>` phase (graphql_api.observability.RequestPhases)."""
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        if type_ is schema.subscription_type:
            continue  # its fields stream; a subscription's time is not a request's
        for name, field in type_.fields.items():
            resolve = field.resolve
            if resolve is None or getattr(resolve, "_is_default", False):
                continue
            if getattr(resolve, "_timed", False):
                continue
            field.resolve = _timed(resolve, f"{type_.name}.{name}")


def _timed(resolve: Callable[..., Any], name: str) -> Callable[..., Any]:
    def timed_resolve(source: Any, info: Any, **args: Any) -> Any:
        phases = current_phases.get()
        if phases is None:
            return resolve(source, info, **args)
        began, nested = time.perf_counter(), phases.nested()
        try:
            result = resolve(source, info, **args)
        except Exception:
            phases.add_resolver(name, time.perf_counter() - began, nested)
            raise
        if not isawaitable(result):
            phases.add_resolver(name, time.perf_counter() - began, nested)
            return result

        async def finish() -> Any:
            try:
                return await result
            finally:
                phases.add_resolver(name, time.perf_counter() - began, nested)

        return finish()

    timed_resolve._timed = True  # type: ignore[attr-defined]
    return timed_resolve
