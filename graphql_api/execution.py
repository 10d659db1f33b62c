"""GraphQL execution with a short path for plain scalar fields.

A page of 20 matches is ~260 fields, ~200 of them scalars read straight off a Strawberry object
(`score`, `nonprofit.name`, ...). graphql-core runs each through its whole field machinery:
a resolve-info object, argument coercion, Strawberry's resolver wrapper, awaitable checks and
the type dispatch of `complete_value`; that was about half of a page's GraphQL cost in the load
benchmark (bench/api_load.py). For a field whose resolver is Strawberry's default one (no
resolver function, permission or field extension: `StrawberryField.is_basic_field`), that takes
no arguments and whose type is a scalar or enum, `PlainFieldExecution` calls the same resolver
(it reads the attribute and ignores the resolve info) and coerces the value as graphql-core
would. Anything else, and any value that would be an error (null for a non-null type, a value
the scalar refuses), goes through graphql-core's own path, which reports it as it always does.
Schema extensions that hook `resolve` run as graphql-core middleware: with any, every field
takes the full path.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLError,
    GraphQLField,
    GraphQLLeafType,
    GraphQLObjectType,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

# Per field definition (they live as long as their schema): its leaf type and whether it is
# nullable, or None where the field takes the full path. Keyed by id, the field kept beside it.
_PLAIN: dict[int, tuple[GraphQLField, tuple[GraphQLLeafType, bool] | None]] = {}


class PlainFieldExecution(StrawberryGraphQLCoreExecutionContext):
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
        # Strawberry always passes a middleware manager; it holds the extensions hooking `resolve`.
        middleware = self.middleware_manager.middlewares if self.middleware_manager else ()
        if plain is not None and not node.arguments and not middleware:
            leaf, nullable = plain
            value = field_def.resolve(source, None)  # type: ignore[union-attr,misc]
            if value is None and nullable:
                return None
            if value is not None:
                try:
                    coerced = leaf.coerce_output_value(value)
                except (GraphQLError, TypeError, ValueError):
                    coerced = None  # the full path below reports it as a field error
                if coerced is not Undefined and coerced is not None:
                    return coerced
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )


def plain_leaf(field_def: GraphQLField) -> tuple[GraphQLLeafType, bool] | None:
    """The field's scalar or enum type and whether it is nullable, where the field reads a plain
    attribute (Strawberry marks its default resolver `_is_default`); None for any other."""
    cached = _PLAIN.get(id(field_def))
    if cached is not None and cached[0] is field_def:
        return cached[1]
    named = get_nullable_type(field_def.type)
    plain = None
    if getattr(field_def.resolve, "_is_default", False) and is_leaf_type(named):
        plain = (named, not is_non_null_type(field_def.type))
    _PLAIN[id(field_def)] = (field_def, plain)
    return plain
