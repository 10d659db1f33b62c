"""graphql_api.execution: the short path for plain scalar fields answers exactly what
graphql-core's full path answers, errors included."""

from __future__ import annotations

import asyncio
from enum import Enum

import strawberry
from hypothesis import HealthCheck, given, settings
from hypothesis_graphql import from_schema

from graphql_api.execution import PlainFieldExecution, plain_leaf


@strawberry.enum
class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Item:
    name: str
    note: str | None
    size: float
    colour: Colour
    tags: list[str]
    # Values the types refuse: a null for a non-null Int, an Int beyond 32 bits, a float that
    # is not finite. Each is a field error on either path.
    missing: int
    huge: int
    nan: float
    child: Item | None

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()

    @strawberry.field
    def repeat(self, times: int) -> str:
        return self.name * max(0, min(times, 3))


def _item(name: str, child: Item | None = None) -> Item:
    return Item(
        name=name,
        note=None if child else "note",
        size=1.5,
        colour=Colour.BLUE,
        tags=["a", name],
        missing=None,  # type: ignore[arg-type]
        huge=2**40,
        nan=float("nan"),
        child=child,
    )


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [_item("one", _item("inner")), _item("two")]

    @strawberry.field
    async def first(self) -> Item | None:
        return _item("async", _item("deep", _item("deeper")))


FULL = strawberry.Schema(query=Query)
SHORT = strawberry.Schema(query=Query, execution_context_class=PlainFieldExecution)


def _both(query: str) -> tuple[dict, dict]:
    full, short = asyncio.run(FULL.execute(query)), asyncio.run(SHORT.execute(query))

    def shape(result: strawberry.types.ExecutionResult) -> dict:
        errors = sorted((e.message, tuple(e.path or ())) for e in result.errors or [])
        return {"data": result.data, "errors": errors}

    return shape(full), shape(short)


def test_the_short_path_takes_plain_scalars_only() -> None:
    """Strawberry marks its default resolver; without the mark every field would take the full
    path and the tests below would pass without testing anything."""
    item = SHORT._schema.get_type("Item")
    plain = {name for name, field in item.fields.items() if plain_leaf(field) is not None}
    assert plain == {"name", "note", "size", "colour", "missing", "huge", "nan"}


def test_plain_fields_errors_aliases_and_fragments_match_the_full_path() -> None:
    query = """
    fragment Parts on Item { size colour tags }
    query {
      items { name note ...Parts alias: name shout repeat(times: 2)
              child { name note __typename child { name } } }
      first { name child { ... on Item { name @skip(if: true) note @include(if: true) } } }
      missing: first { missing }
      huge: first { huge }
      nan: first { nan }
    }"""
    full, short = _both(query)
    assert short == full
    assert len(full["errors"]) == 3, "the query must exercise a field error of each kind"
    assert full["data"]["items"][0]["alias"] == "one"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=from_schema(str(FULL)))
def test_any_query_gets_the_same_answer_on_both_paths(query: str) -> None:
    full, short = _both(query)
    assert short == full
