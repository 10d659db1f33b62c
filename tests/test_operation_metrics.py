"""OperationMetrics, one extension instance shared by all requests, labels each operation
with its own name and errors."""

from __future__ import annotations

import asyncio

import strawberry

from graphql_api.observability import ApiMetrics, OperationMetrics


def test_operation_metrics_count_each_concurrent_operation_under_its_own_name() -> None:
    # OperationMetrics is one instance for all requests: a later request's start must not
    # relabel an earlier one still running.
    metrics = ApiMetrics()
    release = asyncio.Event()

    @strawberry.type
    class Slow:
        @strawberry.field
        async def wait(self) -> int:
            await release.wait()
            return 1

        @strawberry.field
        def now(self) -> int:
            return 2

    schema = strawberry.Schema(query=Slow, extensions=[OperationMetrics(metrics)])

    async def main() -> None:
        first = asyncio.ensure_future(schema.execute("query First { wait }"))
        await asyncio.sleep(0.01)
        assert (await schema.execute("query Second { now }")).data == {"now": 2}
        release.set()
        assert (await first).data == {"wait": 1}

    asyncio.run(main())
    counts = {
        sample.labels["operation"]: sample.value
        for family in metrics.registry.collect() for sample in family.samples
        if sample.name == "donor_match_graphql_request_duration_seconds_count"
    }
    assert counts == {"First": 1.0, "Second": 1.0}
