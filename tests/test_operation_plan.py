"""graphql_api.operation_plan: a planned operation answers exactly what graphql-core's executor
answers (data, errors with their paths and locations), and only qualifying operations are
planned."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
import strawberry
from hypothesis import HealthCheck, given, settings
from hypothesis_graphql import from_schema
from strawberry.extensions import ParserCache

from graphql_api.execution import PlainFieldExecution
from graphql_api.operation_plan import PlannedSchema

calls: Counter[str] = Counter()


@strawberry.type
class Row:
    id: strawberry.ID
    score: float
    tags: list[str]
    note: str | None


@strawberry.type
class Query:
    @strawberry.field
    async def rows(self, first: int = 2, prefix: str = "r") -> list[Row]:
        calls["rows"] += 1
        if first < 0:
            raise ValueError("first must not be negative")
        # At most 5: random queries ask for up to 2**31 - 1 rows.
        count = min(first, 5)
        return [Row(id=f"{prefix}{i}", score=i / 2, tags=["a"], note=None) for i in range(count)]

    @strawberry.field
    def row(self, id: strawberry.ID) -> Row | None:
        if id == "boom":
            raise LookupError("no such row")
        return None if id == "none" else Row(id=id, score=1.0, tags=[], note="n")

    @strawberry.field
    async def broken(self) -> list[Row]:
        calls["broken"] += 1
        return [Row(id="x", score=1.0, tags=[], note=None), None]  # type: ignore[list-item]

    @strawberry.field
    async def strict(self) -> Row:
        raise PermissionError("not yours")


@strawberry.type
class Mutation:
    @strawberry.mutation
    def touch(self) -> Row:
        return Row(id="t", score=0.0, tags=[], note=None)


built: list[int] = []


class CountingExecution(PlainFieldExecution):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        built.append(1)
        super().__init__(*args, **kwargs)


FULL = strawberry.Schema(query=Query, mutation=Mutation)


def _planned() -> PlannedSchema:
    return PlannedSchema(
        query=Query, mutation=Mutation, execution_context_class=CountingExecution,
        extensions=[ParserCache()],  # the same document for the same text, as served
    )


def _shape(result: Any) -> dict[str, Any]:
    errors = sorted(
        (e.message, tuple(e.path or ()), tuple((loc.line, loc.column) for loc in e.locations or ()))
        for e in result.errors or []
    )
    return {"data": result.data, "errors": errors}


def _run(schema: strawberry.Schema, query: str, variables: dict[str, Any] | None) -> dict:
    return _shape(asyncio.run(schema.execute(query, variable_values=variables)))


ROWS = "query Q($n: Int!) { rows(first: $n) { id score tags note } }"
ROW = "query Q($id: ID!) { found: row(id: $id) { id score ...on Row { tags } } }"
PREFIX = "query Q($p: String) { rows(prefix: $p) { id } }"

# (operation, variables of an execution that compiles its completer, variables of the case)
PLANNED_CASES = [
    (ROWS, {"n": 2}, {"n": 3}),
    (ROWS, {"n": 2}, {"n": -1}),  # a non-null field's error: no data
    (ROWS, {"n": 2}, {}),  # a variable missing
    (ROWS, {"n": 2}, {"n": "three"}),  # a variable of the wrong type
    (ROW, {"id": "a"}, {"id": "boom"}),  # a nullable field's error: the field is null
    (ROW, {"id": "a"}, {"id": "none"}),
    (PREFIX, {"p": "x"}, {"p": None}),
    (PREFIX, {"p": "x"}, {}),
]


@pytest.mark.parametrize(("query", "first", "variables"), PLANNED_CASES)
def test_a_planned_operation_answers_what_the_executor_answers(
    query: str, first: dict[str, Any], variables: dict[str, Any]
) -> None:
    """The first execution of a document goes through the executor, which compiles its
    completer; later ones take the plan and answer as the executor alone does."""
    schema = _planned()
    assert _run(schema, query, first) == _run(FULL, query, first)
    built.clear()
    assert _run(schema, query, variables) == _run(FULL, query, variables)
    assert built == [], "the execution must take the plan, not the executor"


def test_a_value_that_breaks_its_type_goes_through_the_executor_again() -> None:
    schema = _planned()
    query = "{ broken { id } }"
    expected = _run(FULL, query, None)
    assert expected["errors"], "the executor must report the null in a non-null list"
    _run(schema, query, None)
    calls.clear()
    built.clear()
    assert _run(schema, query, None) == expected
    assert calls["broken"] == 2 and len(built) == 1  # the plan ran it, then the executor


NOT_PLANNED = [
    "{ strict { id } }",  # it never completes a value, so no completer is ever compiled
    "{ a: rows { id } b: rows { id } }",
    "{ __typename }",
    "mutation { touch { id } }",
    "{ rows @include(if: true) { id } }",
    "{ ...F } fragment F on Query { rows { id } }",
    "query Q($x: Boolean!) { rows { id @include(if: $x) } }",
]


@pytest.mark.parametrize("query", NOT_PLANNED)
def test_other_operations_always_take_the_executor(query: str) -> None:
    schema = _planned()
    variables = {"x": True} if "$x" in query else None
    expected = _run(FULL, query, variables)
    built.clear()
    for _ in range(3):
        assert _run(schema, query, variables) == expected
    assert len(built) == 3


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=from_schema(str(FULL), fields=["rows", "row", "broken", "strict"]))
def test_any_query_gets_the_same_answer_planned(query: str) -> None:
    schema = _planned()
    expected = _run(FULL, query, None)
    assert _run(schema, query, None) == expected
    assert _run(schema, query, None) == expected
