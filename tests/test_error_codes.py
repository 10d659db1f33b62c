"""graphql_api.errors.ErrorCodes codes a result's errors exactly as Strawberry's MaskErrors
would pick them out (its own `_process_result` is replaced by a cheaper test)."""

from __future__ import annotations

from types import SimpleNamespace

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions.mask_errors import MaskErrors

from graphql_api.errors import ErrorCodes


def test_results_with_and_without_errors() -> None:
    codes = ErrorCodes()
    failed = ExecutionResult(data=None, errors=[GraphQLError("Syntax Error: nope")])
    codes._process_result(failed)
    assert failed.errors is not None
    assert [e.extensions for e in failed.errors] == [{"code": "GRAPHQL_PARSE_FAILED"}]
    for result in (ExecutionResult(data={}, errors=None), ExecutionResult(data={}, errors=[]),
                   SimpleNamespace(data={}), object()):
        before = vars(result).copy() if hasattr(result, "__dict__") else None
        codes._process_result(result)
        assert (vars(result) if hasattr(result, "__dict__") else None) == before
    # Exactly the results that Strawberry's own check processes.
    cases = [(failed, True), (SimpleNamespace(errors=[GraphQLError("x")]), True),
             (SimpleNamespace(errors=None), False), (SimpleNamespace(), False)]
    for result, processed in cases:
        for extension in (ErrorCodes(), MaskErrors()):
            calls: list[object] = []
            extension._process_errors = (  # type: ignore[method-assign]
                lambda errors, calls=calls: calls.append(errors) or errors
            )
            extension._process_result(result)
            assert len(calls) == processed, (extension, result)
