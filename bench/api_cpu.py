"""In-process CPU per request: the bare floor against GraphQL, through the whole served stack.

    PYTHONPATH=$PWD .venv/bin/python bench/api_cpu.py --rounds 7 --requests 300
    PYTHONPATH=$PWD .venv/bin/python bench/api_cpu.py --profile graphql --requests 2000

Both endpoints run as bench/api_load.py serves them (`bench_app`: the API app with all its
middleware, and the bare `/bare/matches` floor beside it), behind the image's httptools protocol
(graphql_api/server.py) on a uvloop loop, fed raw HTTP/1.1 bytes over keep-alive connections
through an in-memory transport: HTTP parsing, the ASGI cycle, middleware, authentication,
Strawberry, graphql-core, the service's thread hop and JSON are all counted; sockets and the
kernel are not. Requests go one at a time per connection (`--concurrency` connections at once,
as a served worker has several requests in flight), for the same random donors on every side, in
rounds that take the sides in turn (`graphql_generic`: GraphQL with an Accept header that sends
it through Strawberry's generic HTTP handling rather than the plain POST path); each round's CPU
time (`time.process_time`: every thread of the process, the service threads included) over its
requests is one sample, and the minimum and median of the rounds are reported, with their ratio.
CPU time rather than wall time: on a shared host a ratio of CPU times holds still where
latencies do not. The store (an embedded FalkorDB, a separate process) is not counted.

The graph is bench/api_load.py's, prepared (and cached) at a small scale by default, served
from the embedded FalkorDB or (`--store neo4j`) a local Neo4j server.
`--profile graphql|bare` runs cProfile over the event-loop thread instead (the service thread is
the same for both sides) and prints the functions by own time; `--layers` times GraphQL's
layers one by one, down to the operation plan alone and the service call alone, and the floor
alone and behind the API's middleware (with `--stub-service`: the API's own cost per layer).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import random
import statistics
import sys
import time
from inspect import isawaitable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import api_load  # noqa: E402  (bench/, beside this script)

QUERY = (
    "query Matches($d: ID!) { matches(donorId: $d, first: 20) {\n"
    "  id score probability impact nonprofit { id name }\n"
    "  reasons { sharedCauses { id name } similarDonors distanceKm } } }"
)  # bench/load_matches.mjs's


class _Transport:
    """Enough of an asyncio transport for uvicorn's protocol: collects what it writes, and
    resolves `done` once a whole response (headers and Content-Length bytes) is in."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.done: asyncio.Future[bytes] | None = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.done is None or self.done.done():
            return
        head = bytes(self.buffer[:end]).lower()
        start = head.find(b"content-length:")
        if start < 0:
            raise RuntimeError(f"a response without Content-Length: {head[:200]!r}")
        length = int(head[start + 15:].split(b"\r\n", 1)[0])
        if len(self.buffer) >= end + 4 + length:
            self.done.set_result(bytes(self.buffer))
            self.buffer.clear()

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        raise RuntimeError("the server closed the connection")

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        raise RuntimeError("not an upgrade")


def graphql_request(donor: str, token: str, accept: bytes = b"") -> bytes:
    body = json.dumps(
        {"query": QUERY, "variables": {"d": donor}, "operationName": "Matches"}
    ).encode()
    return (
        b"POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"authorization: Bearer " + token.encode() + b"\r\n"
        b"content-type: application/json\r\n" + accept +
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def bare_request(donor: str) -> bytes:
    return f"GET /bare/matches?donor={donor} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode()


class Client:
    """One keep-alive connection into uvicorn's httptools protocol serving `app`."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop) -> None:
        import uvicorn
        from uvicorn.server import ServerState

        from graphql_api.server import BoundedHttpProtocol

        config = uvicorn.Config(
            app, http=BoundedHttpProtocol, lifespan="off", log_level="warning", access_log=False
        )
        config.load()
        self.loop = loop
        self.transport = _Transport()
        self.protocol = BoundedHttpProtocol(config, ServerState(), {}, _loop=loop)
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]

    async def send(self, raw: bytes) -> bytes:
        self.transport.done = self.loop.create_future()
        self.protocol.data_received(raw)
        answer = await self.transport.done
        if not answer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"not 200: {answer[:500]!r}")
        return answer


async def lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Queue[dict[str, str]]]:
    """Start the app's lifespan (the services' warm-up, gc.freeze, the BLAS limit) as a
    server would; returns the task and the queue that ends it."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    started = asyncio.get_running_loop().create_future()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set_result(None)
        elif message["type"] == "lifespan.startup.failed":
            started.set_exception(RuntimeError(message.get("message")))

    task = asyncio.get_running_loop().create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    )
    await inbox.put({"type": "lifespan.startup"})
    await started
    return task, inbox


def stub_service(app: Any, args: argparse.Namespace) -> None:
    """Make the matches service answer every donor with pages it computed once (no store, no
    ranking): what is left is the API's own cost, the same for both sides."""
    from donor_match.services.auth import Principal, Role

    matches = app.api.state.services.matches
    admin = Principal("bench", Role.ADMIN)
    pages = [matches.matches(admin, d, 20) for d in donors_for(-2, 50, args.donors)]
    served = iter(range(1 << 62))

    def answer(*_: Any, **__: Any) -> Any:
        return pages[next(served) % len(pages)]

    matches.matches = answer


def donors_for(round_: int, count: int, donors: int) -> list[str]:
    rng = random.Random(round_)
    return [f"donor-{rng.randrange(donors):07d}" for _ in range(count)]


async def layers(app: Any, args: argparse.Namespace, token: str) -> dict[str, list[float]]:
    """GraphQL's layers one by one, each as event-loop thread CPU ms per request: the whole app,
    the GraphQL view without the app's middleware, Strawberry's `schema.execute` alone, the
    operation plan alone, and the service call alone; beside them the floor, alone and behind
    the API's own middleware (what of the gap is the middleware's, which the floor skips)."""
    from donor_match.services.auth import Principal, Role
    from graphql_api.app import _GraphQLApp
    from graphql_api.context import Context
    from graphql_api.loaders import initiative_loader, nonprofit_loader
    from graphql_api.observability import run_in_thread
    from graphql_api.parsing import _parse as parse

    view = next(
        route.endpoint for route in app.api.routes
        if getattr(route, "path", "") == "/graphql" and isinstance(route.endpoint, _GraphQLApp)
    )
    loop = asyncio.get_running_loop()
    whole, bare_view = Client(app, loop), Client(view, loop)
    outermost = app.api.user_middleware[0]  # RequestMiddleware, configured as the API's
    behind_middleware = Client(outermost.cls(app, *outermost.args, **outermost.kwargs), loop)
    principal = Principal("bench", Role.ADMIN)

    def context() -> Context:
        services = view._services
        return Context(
            request=None, response=None, services=services,  # type: ignore[arg-type]
            metrics=view._metrics, client="ip:bench",
            subscription_slots=view._subscription_slots, authenticated=principal,
            nonprofit_loader=nonprofit_loader(services.catalog, cache=True),
            initiative_loader=initiative_loader(services.catalog, cache=True),
        )

    async def execute(donor: str) -> None:
        result = await view.schema.execute(
            QUERY, variable_values={"d": donor}, context_value=context(),
            operation_name="Matches",
        )
        if result.errors:
            raise RuntimeError(result.errors)

    schema = view.schema
    document = parse(QUERY)

    async def plan(donor: str) -> None:
        # The operation plan alone (graphql_api/operation_plan.py), without Strawberry's
        # execution around it: what `schema.execute` adds is the difference.
        result = schema._plans.execute(
            schema._schema, document, context_value=context(), variable_values={"d": donor},
            operation_name="Matches", executor_class=schema.execution_context_class,
        )
        if isawaitable(result):
            result = await result
        if result.errors:
            raise RuntimeError(result.errors)

    async def hop(donor: str) -> None:
        await run_in_thread(view._services.matches.matches, principal, donor, 20)

    sides: dict[str, Any] = {
        "app": lambda donor: whole.send(graphql_request(donor, token)),
        "view_without_middleware": lambda donor: bare_view.send(graphql_request(donor, token)),
        "schema_execute": execute,
        "plan_only": plan,
        "service_call_only": hop,  # the service call and its thread hop
        "floor": lambda donor: whole.send(bare_request(donor)),
        "floor_behind_middleware": lambda donor: behind_middleware.send(bare_request(donor)),
    }
    spent: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(args.rounds):
        donors = donors_for(round_, args.requests, args.donors)
        for name, send in sides.items():
            began = time.thread_time()
            for donor in donors:
                await send(donor)
            spent[name].append(round((time.thread_time() - began) / len(donors) * 1e3, 3))
    return spent


async def measure(args: argparse.Namespace, token: str) -> dict[str, Any]:
    app = api_load.bench_app()
    stop_lifespan, inbox = await lifespan(app)
    if args.gc_off:
        gc.disable()  # after the lifespan's collect and freeze, as served
    if args.threads:  # the pool both sides' service calls run in (run_in_thread)
        from concurrent.futures import ThreadPoolExecutor

        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(args.threads))
    if args.stub_service:
        stub_service(app, args)
    if args.layers:
        spent = await layers(app, args, token)
        await inbox.put({"type": "lifespan.shutdown"})
        await stop_lifespan
        return {"layers_loop_cpu_ms": {name: {"min": min(v), "rounds": v}
                                       for name, v in spent.items()}}
    loop = asyncio.get_running_loop()
    clients = [Client(app, loop) for _ in range(args.concurrency)]
    client = clients[0]

    async def send_all(raws: list[bytes]) -> None:
        # Each connection sends its share one after the other; the connections run together.
        async def one(connection: Client, share: list[bytes]) -> None:
            for raw in share:
                await connection.send(raw)

        n = len(clients)
        await asyncio.gather(*(one(c, raws[i::n]) for i, c in enumerate(clients)))

    requests = {
        "bare": lambda donor: bare_request(donor),
        "graphql": lambda donor: graphql_request(donor, token),
        # The same, with an Accept header that sends it through Strawberry's generic HTTP
        # handling instead of the plain POST path (graphql_api/http.py): that path's gain.
        "graphql_generic": lambda donor: graphql_request(
            donor, token, b"accept: application/json, text/plain\r\n"
        ),
    }
    # Warm both paths: caches, the parsed operation, the completers, the page rows.
    for donor in donors_for(-1, args.warmup, args.donors):
        for make in requests.values():
            await client.send(make(donor))
    samples: dict[str, list[float]] = {name: [] for name in requests}
    loop_samples: dict[str, list[float]] = {name: [] for name in requests}
    order = list(requests)
    for round_ in range(args.rounds):
        order = order[1:] + order[:1]  # each target first in turn
        raws = {name: [make(d) for d in donors_for(round_, args.requests, args.donors)]
                for name, make in requests.items()}
        for name in order:
            if args.profile == name:
                profile = cProfile.Profile(time.thread_time)  # CPU, not GIL waits
                profile.enable()
            began, began_loop = time.process_time(), time.thread_time()
            await send_all(raws[name])
            spent, spent_loop = time.process_time() - began, time.thread_time() - began_loop
            if args.profile == name:
                profile.disable()
                out = io.StringIO()
                pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(45)
                print(out.getvalue())
                out = io.StringIO()
                pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(60)
                print(out.getvalue())
                profile.dump_stats(str(REPO / "var" / f"api-cpu-{name}.prof"))
            samples[name].append(spent / args.requests * 1e3)
            loop_samples[name].append(spent_loop / args.requests * 1e3)
    await inbox.put({"type": "lifespan.shutdown"})
    await stop_lifespan

    def summary(values: list[float]) -> dict[str, float]:
        return {"min": round(min(values), 3), "median": round(statistics.median(values), 3)}

    result: dict[str, Any] = {
        name: {
            "cpu_ms_per_request": summary(samples[name]),
            "event_loop_thread_cpu_ms": summary(loop_samples[name]),
            "rounds_ms": [round(v, 3) for v in samples[name]],
        }
        for name in requests
    }
    for name in ("graphql", "graphql_generic"):
        result[f"{name}_over_bare"] = {
            stat: round(
                result[name]["cpu_ms_per_request"][stat]
                / result["bare"]["cpu_ms_per_request"][stat], 3
            )
            for stat in ("min", "median")
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--donors", type=int, default=20_000)
    parser.add_argument("--nonprofits", type=int, default=2_000)
    parser.add_argument("--donations", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store", choices=["falkordb", "neo4j"], default="falkordb")
    parser.add_argument("--train-donors", type=int, default=5_000)
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--needs-share", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300, help="per round and side")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--stub-service", action="store_true",
        help="the service answers precomputed pages: the API's own CPU, without the store's",
    )
    parser.add_argument(
        "--layers", action="store_true",
        help="GraphQL's layers one by one (whole app, view without middleware, schema.execute)",
    )
    parser.add_argument("--profile", choices=["graphql", "graphql_generic", "bare"], default=None)
    parser.add_argument(
        "--gc-off", action="store_true",
        help="the cyclic garbage collector off while measuring: what collections cost each side",
    )
    parser.add_argument(
        "--concurrency", type=int, default=1,
        help="keep-alive connections sending together (a served worker has several in flight)",
    )
    parser.add_argument(
        "--threads", type=int, default=0,
        help="threads of the event loop's executor (0: Python's default size)",
    )
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    import uvloop

    from donor_match.services.auth import Role, TokenService
    from donor_match.settings import AuthSettings

    work = args.workdir or api_load.default_workdir(args.donors, args.nonprofits, args.donations)
    server = api_load.BenchStore(args.store, work)
    try:
        prepared = api_load.prepare_store(work, args, server)
        api_load.state_needs_once(prepared, server, args)
        os.environ["BENCH_MODELS"] = str(work / "models")
        os.environ["BENCH_STORE"] = server.settings_json()
        token = TokenService(AuthSettings(jwt_secret=api_load.SECRET)).issue("bench", Role.ADMIN)
        result = uvloop.run(measure(args, token))
    finally:
        server.stop()
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    result["load_average"] = os.getloadavg()
    result["scale"] = [args.donors, args.nonprofits, args.donations]
    result["requests_per_round"], result["rounds"] = args.requests, args.rounds
    result["concurrency"] = args.concurrency
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
