"""graphql_api.execution: the short path for plain fields answers exactly what graphql-core's
full path answers, errors included."""

from __future__ import annotations

import asyncio
from enum import Enum
from types import SimpleNamespace

import strawberry
from hypothesis import HealthCheck, given, settings
from hypothesis_graphql import from_schema
from strawberry.extensions import ParserCache

from graphql_api.execution import PlainFieldExecution, plain_reader


@strawberry.enum
class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Label:
    text: str
    weight: float | None
    colour: Colour


@strawberry.type
class Other:
    code: int


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
    # Plain objects and lists of them, one holding a null where the type refuses it.
    label: Label
    labels: list[Label]
    broken: list[Label]
    either: Label | Other
    odd: Label  # a value without `weight`: a field error on either path, where it is missing

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
        label=Label(text=name, weight=None, colour=Colour.RED),
        labels=[Label(text=t, weight=2.0, colour=Colour.BLUE) for t in ("x", name)],
        broken=[Label(text="ok", weight=1.0, colour=Colour.RED), None],  # type: ignore[list-item]
        either=Other(code=7) if child else Label(text="l", weight=0.5, colour=Colour.RED),
        odd=SimpleNamespace(text="odd", colour=Colour.RED),  # type: ignore[arg-type]
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


def test_plain_fields_are_those_without_a_resolver_or_arguments() -> None:
    """Strawberry marks its resolver for basic fields; without the mark every field would take
    the full path and the tests below would pass without testing anything."""
    item = SHORT._schema.get_type("Item")
    plain = {name for name, field in item.fields.items() if plain_reader(field) is not None}
    assert plain == set(item.fields) - {"shout", "repeat"}
    assert plain_reader(item.fields["name"])(_item("one")) == "one"


def test_a_selection_of_plain_fields_is_completed_without_graphql_cores_field_machinery() -> None:
    """Only the root field's resolver runs through `execute_field`; every object and list below
    it is completed by the short path (a count of 1 here, 1 + every field without it)."""
    calls = []

    class Counting(PlainFieldExecution):
        def execute_field(self, *args: object, **kwargs: object) -> object:
            calls.append(args[2][0].node.name.value)  # type: ignore[index]
            return super().execute_field(*args, **kwargs)  # type: ignore[arg-type]

    schema = strawberry.Schema(query=Query, execution_context_class=Counting)
    query = "{ items { name size tags child { name } label { text } labels { text weight } } }"
    result = asyncio.run(schema.execute(query))
    assert result.errors is None
    assert result.data == asyncio.run(FULL.execute(query)).data
    assert calls == ["items"]


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
      objects: items { label { text weight colour __typename } labels { ... on Label { text } } }
      broken: first { broken { text } }
      either: items { either { ... on Label { text } ... on Other { code } } }
      odd: first { name odd { text weight } }
    }"""
    full, short = _both(query)
    assert short == full
    assert len(full["errors"]) == 5, "the query must exercise a field error of each kind"
    assert full["data"]["items"][0]["alias"] == "one"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=from_schema(str(FULL)))
def test_any_query_gets_the_same_answer_on_both_paths(query: str) -> None:
    full, short = _both(query)
    assert short == full


def test_completers_are_shared_by_executions_of_one_document_with_the_same_directive_values() -> (
    None
):
    """Strawberry's parser cache gives every request with the same text the same document; its
    completers are compiled once, and again for other values of the variables its directives
    read (a completer compiled for `$withText: true` would answer `false` wrongly)."""
    compiled = []

    class Counting(PlainFieldExecution):
        def _compile(self, *args: object) -> object:
            compiled.append(args[0])
            return super()._compile(*args)  # type: ignore[arg-type]

    schema = strawberry.Schema(
        query=Query, execution_context_class=Counting, extensions=[ParserCache()]
    )
    query = """query Labels($withText: Boolean!, $size: Boolean!) {
      items { name label { text @include(if: $withText) colour } size @skip(if: $size) } }"""

    def run(with_text: bool, size: bool = True) -> dict:
        variables = {"withText": with_text, "size": size}
        result = asyncio.run(schema.execute(query, variable_values=variables))
        assert result.errors is None
        assert result.data == asyncio.run(FULL.execute(query, variable_values=variables)).data
        return result.data  # type: ignore[return-value]

    assert "text" in run(True)["items"][0]["label"]
    first = len(compiled)
    assert first > 0
    assert "text" in run(True)["items"][0]["label"]
    assert len(compiled) == first, "the same document and values compile nothing again"
    assert "text" not in run(False)["items"][0]["label"]
    assert len(compiled) > first
    assert "size" in run(True, size=False)["items"][0]


@strawberry.type
class Node:
    name: str
    children: list[Node]


def _tree(depth: int) -> Node:
    return Node(name=f"level-{depth}", children=[_tree(depth - 1)] if depth else [])


@strawberry.type
class Forest:
    @strawberry.field
    def trees(self) -> list[Node]:
        return [_tree(30), _tree(2)]


def test_a_selection_nested_deeper_than_one_function_holds_gets_the_same_answer() -> None:
    """A completer's source nests a loop per list, and CPython compiles at most 20 statically
    nested blocks in one function: deep selections are split into functions."""
    depth = 30
    query = "{ trees { " + "name children { " * depth + "name" + " }" * depth + " } }"
    full = asyncio.run(strawberry.Schema(query=Forest).execute(query))
    schema = strawberry.Schema(query=Forest, execution_context_class=PlainFieldExecution)
    short = asyncio.run(schema.execute(query))
    assert full.errors is None and short.errors is None
    assert short.data == full.data
    assert str(short.data).count("'name': 'level-") == depth + 1 + 3
