"""Parse each operation text once: clients send the same few operations again and again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache

from graphql import GraphQLError, parse
from strawberry.extensions import SchemaExtension

# Bounded, so unique texts from a hostile client cannot grow it; keyed by the text and the parser
# options, so the token limit (MaxTokensLimiter sets it as a parser option) still applies.
_parse = lru_cache(maxsize=256)(parse)


class ParsedOperationCache(SchemaExtension):
    """Strawberry's ParserCache, except that a text that does not parse is left to Strawberry's
    own parsing step, which reports it as a GraphQL error (ParserCache lets the syntax error
    escape the request, losing its `extensions.code`)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        # A text that does not parse is parsed again, and refused with its code, by Strawberry.
        if context.query:
            with suppress(GraphQLError):
                context.graphql_document = _parse(context.query, **context.parse_options)
        yield
