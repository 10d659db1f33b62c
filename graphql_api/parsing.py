"""Parse and validate each operation text once: clients send the same few operations again and
again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

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


class _Identity:
    """A document as a cache key by identity: hashing a syntax tree walks all of it (~10 µs a
    request), and the parse cache hands the same text's requests the same document object.
    The cache entry holds the document, so its id cannot be reused while the entry lives."""

    __slots__ = ("_hash", "document")

    def __init__(self, document: DocumentNode) -> None:
        self.document = document
        self._hash = id(document)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.document is self.document


@lru_cache(maxsize=256)
def _validate(
    schema: GraphQLSchema, document: _Identity, rules: tuple[type, ...]
) -> list[GraphQLError]:
    return validate_document(schema, document.document, rules)


class ValidatedOperationCache(SchemaExtension):
    """Strawberry's ValidationCache keyed by the parsed document's identity instead of its
    value (and the rules, which the limits add per request as the same classes)."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        assert context.graphql_document is not None  # validation follows a successful parse
        context.pre_execution_errors = _validate(
            context.schema._schema, _Identity(context.graphql_document),
            context.validation_rules,
        )
        yield
