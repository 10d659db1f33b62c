"""graphql_api.hooks and the validation cache: the same hooks run, in the same order, with the
same exceptions, as under Strawberry's own runner; a document is validated once per rule set."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError
from strawberry.extensions import AddValidationRules, QueryDepthLimiter, SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

from graphql_api import parsing
from graphql_api.hooks import FastExtensionsRunner
from graphql_api.parsing import ParsedOperationCache, ValidatedOperationCache


class Boom(Exception):
    pass


class Other(Exception):
    pass


def recorder(name: str, log: list[str], *, swallow: bool = False,
             replace: bool = False, fail_enter: bool = False,
             fail_exit: bool = False) -> SchemaExtension:
    class Recorder(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            log.append(f"{name} enter")
            if fail_enter:
                raise Boom(name)
            try:
                yield
            except Boom as exc:
                log.append(f"{name} saw {exc!r}")
                if replace:
                    raise Other(name) from exc
                if not swallow:
                    raise
            else:
                log.append(f"{name} exit")
                if fail_exit:
                    raise Other(name)
            finally:
                log.append(f"{name} finally")

        def on_execute(self) -> Iterator[None]:
            log.append(f"{name} execute")
            yield

    return Recorder()


class AsyncHook(SchemaExtension):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def on_operation(self) -> AsyncIterator[None]:  # type: ignore[override]
        self.log.append("async enter")
        yield
        self.log.append("async exit")


class Results(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        return {"mine": 1}


def run(runner_class: type[SchemaExtensionsRunner], specs: list[dict[str, Any]],
        raise_inside: bool, async_hook: bool = False, sync: bool = False
        ) -> tuple[list[str], str]:
    log: list[str] = []
    extensions = [recorder(str(i), log, **spec) for i, spec in enumerate(specs)]
    if async_hook:
        extensions.insert(1, AsyncHook(log))
    context = ExecutionContext(query="{ a }", schema=None, allowed_operations=())  # type: ignore[arg-type]
    runner = runner_class(context, extensions)

    async def main() -> str:
        try:
            async with runner.operation():
                log.append("body")
                if raise_inside:
                    raise Boom("body")
            async with runner.executing():
                pass
        except Exception as exc:
            return f"raised {exc!r}"
        return "returned"

    def main_sync() -> str:
        try:
            with runner.operation():
                log.append("body")
                if raise_inside:
                    raise Boom("body")
            with runner.executing():
                pass
        except Exception as exc:
            return f"raised {exc!r}"
        return "returned"

    outcome = main_sync() if sync else asyncio.run(main())
    return log, outcome


CASES: list[tuple[list[dict[str, Any]], bool]] = [
    ([{}, {}, {}], False),
    ([{}, {}, {}], True),
    ([{}, {"swallow": True}, {}], True),
    ([{}, {"replace": True}, {}], True),
    ([{"swallow": True}, {"replace": True}, {}], True),
    ([{}, {"fail_exit": True}, {}], False),
    ([{"swallow": True}, {}, {"fail_exit": True}], False),
    ([{}, {"fail_enter": True}, {}], False),
    ([], True),
]


@pytest.mark.parametrize(("specs", "raise_inside"), CASES)
@pytest.mark.parametrize("async_hook", [False, True])
def test_the_fast_runner_runs_hooks_as_strawberry_does(
    specs: list[dict[str, Any]], raise_inside: bool, async_hook: bool
) -> None:
    expected = run(SchemaExtensionsRunner, specs, raise_inside, async_hook)
    assert run(FastExtensionsRunner, specs, raise_inside, async_hook) == expected
    assert expected[0]  # something ran


@pytest.mark.parametrize(("specs", "raise_inside"), CASES)
def test_the_fast_runner_runs_sync_hooks_as_strawberry_does(
    specs: list[dict[str, Any]], raise_inside: bool
) -> None:
    expected = run(SchemaExtensionsRunner, specs, raise_inside, sync=True)
    assert run(FastExtensionsRunner, specs, raise_inside, sync=True) == expected


def test_extension_results_are_collected() -> None:
    context = ExecutionContext(query="{ a }", schema=None, allowed_operations=())  # type: ignore[arg-type]
    context.extensions_results["theirs"] = 2
    runner = FastExtensionsRunner(context, [Results(), ParsedOperationCache()])
    assert asyncio.run(runner.get_extensions_results(context)) == {"mine": 1, "theirs": 2}


@strawberry.type
class Node:
    value: int

    @strawberry.field
    def child(self) -> Node:
        return Node(value=self.value + 1)


@strawberry.type
class Query:
    @strawberry.field
    def node(self) -> Node:
        return Node(value=0)


def test_a_document_is_validated_once_per_rule_set(monkeypatch: pytest.MonkeyPatch) -> None:
    parsing._validate.cache_clear()
    calls: list[object] = []
    real = parsing.validate_document

    def counted(*args: Any) -> list[GraphQLError]:
        calls.append(args[1])
        return real(*args)

    monkeypatch.setattr(parsing, "validate_document", counted)
    plain = strawberry.Schema(
        query=Query, extensions=[ParsedOperationCache, ValidatedOperationCache]
    )
    limited = strawberry.Schema(
        query=Query,
        extensions=[QueryDepthLimiter(max_depth=2), ParsedOperationCache,
                    ValidatedOperationCache],
    )
    deep = "{ node { child { child { value } } } }"
    for _ in range(3):
        assert plain.execute_sync(deep).data == {"node": {"child": {"child": {"value": 2}}}}
    assert len(calls) == 1
    for _ in range(2):  # the same document under more rules: validated again, and refused
        errors = limited.execute_sync(deep).errors
        assert errors and "exceeds maximum operation depth" in errors[0].message
    assert len(calls) == 2
    invalid = "{ node { missing } }"
    for _ in range(2):
        errors = plain.execute_sync(invalid).errors
        assert errors and "Cannot query field 'missing'" in errors[0].message
    assert len(calls) == 3


def test_a_document_not_from_the_parse_cache_is_still_validated() -> None:
    parsing._validate.cache_clear()
    schema = strawberry.Schema(
        query=Query,
        extensions=[AddValidationRules([]), ValidatedOperationCache],
    )
    assert schema.execute_sync("{ node { value } }").data == {"node": {"value": 0}}
    errors = schema.execute_sync("{ node { nope } }").errors
    assert errors and "Cannot query field 'nope'" in errors[0].message

