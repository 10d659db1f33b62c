"""GraphQL execution with a short path for plain fields.

A page of 20 matches is ~260 fields in ~90 objects, nearly all of them read straight off a
Strawberry object (`score`, `nonprofit { name }`, `reasons { sharedCauses { id } }`).
graphql-core runs each field through its whole machinery: a resolve-info object, argument
coercion, Strawberry's resolver wrapper, awaitable checks, the type dispatch of
`complete_value`, and per object the sub-field collection and a path; that was most of a page's
GraphQL cost in the load benchmark (bench/api_load.py).

A field is plain when its resolver is Strawberry's default one (no resolver function, permission
or field extension: `StrawberryField.is_basic_field`, marked `_is_default`) and it takes no
arguments. `PlainFieldExecution` completes a value whose selection holds only plain fields,
through lists, non-null wrappers and objects without `is_type_of`, down to scalars and enums, by
reading the attributes and coercing the leaves as graphql-core would; a plain scalar field of an
object that is not plain as a whole is completed the same way. Anything else takes graphql-core's
own path: abstract types, `@defer`, and any value that would be an error (null for a non-null
type, a value a scalar refuses, a list that is not one), which graphql-core then reports as it
always does (the default resolvers only read attributes, so reading again is harmless). Schema
extensions that hook `resolve` run as graphql-core middleware: with any, every field takes the
full path.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLError,
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

# Per field definition (they live as long as their schema): its leaf type and whether it is
# nullable, or None where the field takes the full path. Keyed by id, the field kept beside it.
_PLAIN: dict[int, tuple[GraphQLField, tuple[GraphQLLeafType, bool] | None]] = {}

_NOT_PLAIN: Any = object()  # a value the short path leaves to graphql-core

# An object's plain selection: per response name, the field's resolver (None: `__typename`),
# its type and its own selection.
_ObjectPlan = list[tuple[str, Any, GraphQLOutputType, Any]]


class PlainFieldExecution(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per object type and selection (graphql-core's collected field lists, which it keeps
        # for the whole execution): the plan, or None where a field is not plain.
        self._plans: dict[tuple[GraphQLObjectType, int], tuple[Any, _ObjectPlan | None]] = {}

    def _hooked(self) -> bool:
        # Strawberry always passes a middleware manager; it holds the extensions hooking `resolve`.
        return bool(self.middleware_manager and self.middleware_manager.middlewares)

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: Any,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if not self._hooked():
            completed = self._complete_plain(return_type, field_details_list, result)
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
        node = field_details_list[0].node
        field_def = self.schema.get_field(parent_type, node.name.value)
        plain = plain_leaf(field_def) if field_def is not None else None
        if plain is not None and not node.arguments and not self._hooked():
            value = field_def.resolve(source, None)  # type: ignore[union-attr,misc]
            if value is None and plain[1]:
                return None
            coerced = self._complete_leaf(plain[0], value)
            if coerced is not _NOT_PLAIN:
                return coerced
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _complete_plain(self, return_type: GraphQLOutputType, fields: Any, value: Any) -> Any:
        """The completed value, or _NOT_PLAIN where graphql-core has to complete it."""
        if isinstance(return_type, GraphQLNonNull):
            completed = self._complete_plain(return_type.of_type, fields, value)
            return _NOT_PLAIN if completed is None else completed
        if value is None:
            return None
        if isinstance(return_type, GraphQLList):
            if not isinstance(value, list | tuple):
                return _NOT_PLAIN
            items = []
            for item in value:
                completed = self._complete_plain(return_type.of_type, fields, item)
                if completed is _NOT_PLAIN:
                    return _NOT_PLAIN
                items.append(completed)
            return items
        if isinstance(return_type, GraphQLObjectType):
            plan = self._plan(return_type, fields)
            if plan is None or isinstance(value, Exception):
                return _NOT_PLAIN
            result = {}
            for name, resolve, field_type, field_fields in plan:
                if resolve is None:
                    result[name] = return_type.name
                    continue
                completed = self._complete_plain(field_type, field_fields, resolve(value, None))
                if completed is _NOT_PLAIN:
                    return _NOT_PLAIN
                result[name] = completed
            return result
        if is_leaf_type(return_type):
            return self._complete_leaf(return_type, value)  # type: ignore[arg-type]
        return _NOT_PLAIN  # interfaces and unions

    @staticmethod
    def _complete_leaf(leaf: GraphQLLeafType, value: Any) -> Any:
        if value is None or isinstance(value, Exception):
            return _NOT_PLAIN
        try:
            coerced = leaf.coerce_output_value(value)
        except (GraphQLError, TypeError, ValueError):
            return _NOT_PLAIN  # graphql-core reports it as a field error
        return _NOT_PLAIN if coerced is Undefined or coerced is None else coerced

    def _plan(self, object_type: GraphQLObjectType, fields: Any) -> _ObjectPlan | None:
        key = (object_type, id(fields))
        cached = self._plans.get(key)
        if cached is not None:
            return cached[1]
        plan: _ObjectPlan | None = None
        if object_type.is_type_of is None:
            plan = self._plan_of(object_type, fields)
        self._plans[key] = (fields, plan)  # the list kept alive, so its id is not reused
        return plan

    def _plan_of(self, object_type: GraphQLObjectType, fields: Any) -> _ObjectPlan | None:
        grouped, defers, forbidden = self.collect_subfields(object_type, fields)
        if defers or forbidden:
            return None
        plan: _ObjectPlan = []
        for name, field_fields in grouped.items():
            node = field_fields[0].node
            if node.name.value == "__typename":
                plan.append((name, None, object_type, field_fields))
                continue
            field_def = self.schema.get_field(object_type, node.name.value)
            if field_def is None:
                continue  # graphql-core leaves it out too
            if node.arguments or not _is_plain(field_def):
                return None
            plan.append((name, field_def.resolve, field_def.type, field_fields))
        return plan


def _is_plain(field_def: GraphQLField) -> bool:
    """The field takes no arguments and reads a plain attribute: Strawberry's resolver for a
    basic field, which needs no resolve info (`_is_default` alone also marks the wrappers of
    fields with permissions or extensions)."""
    resolve = field_def.resolve
    return (
        getattr(resolve, "_is_default", False)
        and getattr(resolve, "__name__", "") == "_get_basic_result"
        and not field_def.args
    )


def plain_leaf(field_def: GraphQLField) -> tuple[GraphQLLeafType, bool] | None:
    """The field's scalar or enum type and whether it is nullable, where the field is plain;
    None for any other."""
    cached = _PLAIN.get(id(field_def))
    if cached is not None and cached[0] is field_def:
        return cached[1]
    named = get_nullable_type(field_def.type)
    plain = None
    if _is_plain(field_def) and is_leaf_type(named):
        plain = (named, not is_non_null_type(field_def.type))
    _PLAIN[id(field_def)] = (field_def, plain)
    return plain
