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

import keyword
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

NOT_PLAIN: Any = object()  # what a completer returns for a value it leaves to graphql-core

Completer = Callable[[Any], Any]  # a resolved value -> its completed value, or NOT_PLAIN

# Per field definition (they live as long as their schema): how to read a plain field from its
# source, or None for any other field. Keyed by id, the field kept beside it.
_READERS: dict[int, tuple[GraphQLField, tuple[Callable[[Any], Any], str | None] | None]] = {}

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
            if completed is not NOT_PLAIN:
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
                if completed is not NOT_PLAIN:
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
        key = _shared_key(scope, return_type, [f.node for f in fields])
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
            known = (operation, directive_variables(operation, self.fragment_definitions))
            with _SHARED_LOCK:
                _DIRECTIVE_VARIABLES[id(operation)] = known
        values = tuple(self.variable_values.coerced.get(name) for name in known[1])
        try:
            hash(values)
        except TypeError:
            return None
        return id(operation), values

    def _compile(self, return_type: GraphQLOutputType, fields: Any) -> Completer | None:
        return _CompleterSource(self).compile(return_type, fields)


class _NotPlain(Exception):
    """A selection below the one being compiled is not plain: the whole of it is not."""


class _CompleterSource:
    """Writes a completer for one type and selection as the source of one Python function.

    Why source: a page's completion was a call per object and list through nested closures
    that looped over their members; one straight-line function per selection, with the objects
    and lists below it inline, took most of those calls away (docs/api-performance.md). Nothing
    from the request is written into the source: response keys are GraphQL names (quoted with
    repr), attributes are Python identifiers, and every other value (readers, leaf completers,
    type names) is passed in the function's namespace.
    """

    # Beyond this many nested blocks, a selection gets a function of its own: CPython allows
    # only 20 statically nested blocks in one function.
    MAX_NESTING = 8

    def __init__(self, execution: PlainFieldExecution) -> None:
        self._execution = execution
        self._namespace: dict[str, Any] = {
            "NOT_PLAIN": NOT_PLAIN, "isfinite": math.isfinite, "SEQUENCE": (list, tuple)
        }
        self._names = 0

    def compile(self, return_type: GraphQLOutputType, fields: Any) -> Completer | None:
        lines: list[str] = []
        try:
            self._value(lines, 1, 0, return_type, fields, "value", "completed")
        except _NotPlain:
            return None
        source = "\n".join(["def complete(value):", *lines, "    return completed", ""])
        code = compile(source, f"<completer {return_type}>", "exec")
        exec(code, self._namespace)  # the source is ours: see the class
        complete: Completer = self._namespace.pop("complete")
        return complete

    def _name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    def _constant(self, value: Any) -> str:
        name = self._name("k")
        self._namespace[name] = value
        return name

    def _value(
        self, lines: list[str], indent: int, nesting: int, value_type: GraphQLOutputType,
        fields: Any, source: str, target: str, nullable: bool = True,
    ) -> None:
        """Lines setting `target` to `source` completed as `value_type`, or returning
        NOT_PLAIN from the function where graphql-core must complete it (a null where
        `nullable` is False among them)."""
        pad = "    " * indent
        if isinstance(value_type, GraphQLNonNull):
            self._value(lines, indent, nesting, value_type.of_type, fields, source, target, False)
        elif is_leaf_type(value_type):
            self._leaf(lines, pad, value_type, source, target, nullable)  # type: ignore[arg-type]
        elif nesting >= self.MAX_NESTING:
            own = _CompleterSource(self._execution).compile(value_type, fields)
            if own is None:
                raise _NotPlain
            refused = f"{target} is NOT_PLAIN" + ("" if nullable else f" or {target} is None")
            lines += [f"{pad}{target} = {self._constant(own)}({source})",
                      f"{pad}if {refused}:", f"{pad}    return NOT_PLAIN"]
        elif isinstance(value_type, GraphQLList):
            item, completed = self._name("i"), self._name("c")
            lines += [
                f"{pad}if {source} is None:",
                f"{pad}    {target} = None" if nullable else f"{pad}    return NOT_PLAIN",
                # graphql-core takes other iterables, and refuses strings
                f"{pad}elif not isinstance({source}, SEQUENCE):", f"{pad}    return NOT_PLAIN",
                f"{pad}else:", f"{pad}    {target} = []", f"{pad}    for {item} in {source}:",
            ]
            self._value(
                lines, indent + 2, nesting + 1, value_type.of_type, fields, item, completed
            )
            lines.append(f"{pad}        {target}.append({completed})")
        elif isinstance(value_type, GraphQLObjectType):
            self._object(lines, indent, nesting, value_type, fields, source, target, nullable)
        else:
            raise _NotPlain  # interfaces and unions

    def _object(
        self, lines: list[str], indent: int, nesting: int, object_type: GraphQLObjectType,
        fields: Any, source: str, target: str, nullable: bool,
    ) -> None:
        if object_type.is_type_of is not None:
            raise _NotPlain
        grouped, defers, forbidden = self._execution.collect_subfields(object_type, fields)
        if defers or forbidden:
            raise _NotPlain
        pad = "    " * indent
        reads: list[str] = []
        completions: list[str] = []
        entries: list[str] = []
        for key, key_fields in grouped.items():
            node = key_fields[0].node
            if node.name.value == "__typename":
                entries.append(f"{key!r}: {self._constant(object_type.name)}")
                continue
            field_def = self._execution.schema.get_field(object_type, node.name.value)
            if field_def is None:
                continue  # graphql-core leaves it out too
            plain = _plain_field(field_def)
            if plain is None or node.arguments:
                raise _NotPlain
            read, attribute = plain
            raw, completed = self._name("r"), self._name("c")
            if attribute is not None:
                reads.append(f"{pad}        {raw} = {source}.{attribute}")
            else:
                reads.append(f"{pad}        {raw} = {self._constant(read)}({source})")
            self._value(
                completions, indent + 1, nesting + 1, field_def.type, key_fields, raw, completed
            )
            entries.append(f"{key!r}: {completed}")
        lines += [
            f"{pad}if {source} is None:",
            f"{pad}    {target} = None" if nullable else f"{pad}    return NOT_PLAIN",
            f"{pad}elif isinstance({source}, Exception):", f"{pad}    return NOT_PLAIN",
            f"{pad}else:",
        ]
        if reads:  # graphql-core's path reads again a field that raised, and reports it
            lines += [f"{pad}    try:", *reads, f"{pad}    except Exception:",
                      f"{pad}        return NOT_PLAIN"]
        lines += completions
        lines.append(f"{pad}    {target} = {{{', '.join(entries)}}}")

    def _leaf(
        self, lines: list[str], pad: str, leaf: GraphQLLeafType, source: str, target: str,
        nullable: bool,
    ) -> None:
        complete = self._constant(_leaf(leaf))
        refused = f"{target} is NOT_PLAIN" + ("" if nullable else f" or {target} is None")
        called = [f"{target} = {complete}({source})", f"if {refused}:", "    return NOT_PLAIN"]
        unchanged = _UNCHANGED.get(leaf)
        if unchanged is None:
            lines += [pad + line for line in called]
        else:  # most leaves of a page: taken as they are, without a call
            lines += [f"{pad}if {unchanged.format(source)}:", f"{pad}    {target} = {source}",
                      f"{pad}else:", *(f"{pad}    {line}" for line in called)]


def _shared_key(
    scope: tuple[int, tuple[Any, ...]], return_type: GraphQLOutputType, nodes: list[Any]
) -> tuple[Any, ...]:
    """`_SHARED`'s key: the operation's scope (`_operation_scope`), the type, the field nodes."""
    return scope, return_type, tuple(id(node) for node in nodes)


def compiled_completer(
    operation: OperationDefinitionNode, return_type: GraphQLOutputType, node: Any
) -> tuple[bool, Completer | None]:
    """Whether an execution of `operation` (one whose directives read no variables) compiled a
    completer for its root field `node` of `return_type` yet, and that completer (None where
    the selection is not plain): graphql_api.operation_plan runs it without an execution."""
    key = _shared_key((id(operation), ()), return_type, [node])
    with _SHARED_LOCK:
        shared = _SHARED.get(key)
    if shared is None or shared[0] is not operation:
        return False, None
    return True, shared[1]


def directive_variables(operation: OperationDefinitionNode, fragments: dict[str, Any]) -> tuple[
    str, ...
]:
    """The variables read by directives in the operation or any fragment of its document."""
    visitor = _DirectiveVariableNames()
    for node in (operation, *fragments.values()):
        visit(node, visitor)
    return tuple(sorted(visitor.names))


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


def _read(read: Callable[[Any], Any], source: Any) -> Any:
    try:
        return read(source)
    except Exception:  # graphql-core's path reads it again and reports it where it belongs
        return NOT_PLAIN


# Conditions (on a value written `{}`) under which the built-in scalars return a value unchanged
# (graphql.type.scalars): checked first, so most leaves skip the scalar's own coercion.
_UNCHANGED: dict[GraphQLLeafType, str] = {
    GraphQLString: "type({0}) is str",
    GraphQLID: "type({0}) is str",
    GraphQLBoolean: "type({0}) is bool",
    GraphQLFloat: "type({0}) is float and isfinite({0})",
    GraphQLInt: "type({0}) is int and -2147483648 <= {0} <= 2147483647",
}


def _leaf(leaf: GraphQLLeafType) -> Completer:
    """A leaf's completer, for the values the source's inline `_UNCHANGED` check let through."""
    coerce = leaf.coerce_output_value

    def complete_leaf(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, Exception):
            return NOT_PLAIN
        try:
            coerced = coerce(value)
        except (GraphQLError, TypeError, ValueError):
            return NOT_PLAIN  # graphql-core reports it as a field error
        return NOT_PLAIN if coerced is Undefined or coerced is None else coerced

    return complete_leaf


def plain_reader(field_def: GraphQLField) -> Callable[[Any], Any] | None:
    """How to read the field from its source where it is plain: no arguments, and Strawberry's
    resolver for a basic field (marked `_is_default`, which alone also marks the wrappers of
    fields with permissions or extensions); None for any other field."""
    plain = _plain_field(field_def)
    return plain[0] if plain is not None else None


def _plain_field(field_def: GraphQLField) -> tuple[Callable[[Any], Any], str | None] | None:
    """`plain_reader`'s reader, with the attribute it reads where a completer's source may
    read it directly (a Python identifier)."""
    cached = _READERS.get(id(field_def))
    if cached is not None and cached[0] is field_def:
        return cached[1]
    resolve = field_def.resolve
    plain: tuple[Callable[[Any], Any], str | None] | None = None
    if (
        resolve is not None
        and getattr(resolve, "_is_default", False)
        and getattr(resolve, "__name__", "") == "_get_basic_result"
        and not field_def.args
    ):
        definition = field_def.extensions.get("strawberry-definition")
        if definition is not None and definition.default_resolver is getattr:
            name = definition.python_name
            direct = name.isidentifier() and not keyword.iskeyword(name)
            plain = (attrgetter(name), name if direct else None)
        else:
            plain = (lambda source: resolve(source, None), None)
    _READERS[id(field_def)] = (field_def, plain)
    return plain


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
