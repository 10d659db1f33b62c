"""The ASGI application: GraphQL (with GraphiQL and graphql-transport-ws) plus health probes.

Built over services wired elsewhere: `entrypoints.asgi.create_app` is the factory uvicorn runs."""

from __future__ import annotations

import gc
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import orjson
import strawberry
from cross_web import HTTPException
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from threadpoolctl import threadpool_limits

from donor_match.services.auth import Principal, UnauthenticatedError
from donor_match.services.rate_limit import RateLimiter
from donor_match.settings import AppSettings
from graph_store import GraphStore, StoreError
from graphql_api.context import Context, Services
from graphql_api.execution import time_resolvers
from graphql_api.graphiql import GraphiQLDefaults, graphiql
from graphql_api.http import PlainPostView
from graphql_api.limits import SubscriptionSlots
from graphql_api.loaders import initiative_loader, nonprofit_loader
from graphql_api.middleware import RequestMiddleware
from graphql_api.observability import (
    PHASE_SERIALIZATION,
    ApiMetrics,
    add_phase,
    run_in_thread,
)
from graphql_api.schema import build_schema


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NotJsonError(json.JSONDecodeError):
    """A body or WebSocket message that is not the JSON the API takes. A JSONDecodeError, so
    that Strawberry closes a WebSocket with 4400 on it rather than dropping it with a traceback."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "", 0)
        self.reason = reason


def _json_bytes(data: object) -> bytes:
    began = time.perf_counter()
    try:
        body = orjson.dumps(data)
    except orjson.JSONEncodeError:  # non-string keys: `analyticsQuery` rows are the analyst's
        body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    add_phase(PHASE_SERIALIZATION, time.perf_counter() - began)
    return body


def json_depth_over(value: object, limit: int) -> bool:
    """Whether `value` nests lists and objects deeper than `limit` (iteratively: a deep value
    must not exhaust the stack while it is being checked)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


class _GraphQLApp(PlainPostView, GraphQL[Context, None]):
    def __init__(
        self,
        services: Services,
        schema: strawberry.Schema,
        metrics: ApiMetrics,
        ide_html: str,
        settings: AppSettings,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            # A backstop counting queries too; SubscriptionSlots answers first, with a code.
            max_subscriptions_per_connection=2 * settings.max_subscriptions_per_socket + 10,
        )
        self._subscription_slots = SubscriptionSlots(
            settings.max_subscriptions_per_socket, settings.max_subscriptions_per_caller,
            settings.max_subscriptions_per_process,
        )
        self._services = services
        self._metrics = metrics
        self._ide_html = ide_html
        self._max_bytes = settings.max_body_bytes
        self._max_depth = settings.max_json_depth

    @property
    def graphql_ide_html(self) -> str:
        # Strawberry's GraphiQL page with its assets served by this app (no CDN) where
        # node_modules/ has them (graphql_api/graphiql.py).
        return self._ide_html

    def decode_json(self, data: str | bytes) -> object:
        # Bodies and WebSocket messages both come here; a body's size is limited before.
        if len(data) > self._max_bytes:
            raise NotJsonError(f"message larger than {self._max_bytes} bytes")
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise NotJsonError(f"request body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise NotJsonError("request body must be a JSON object with a `query`")
        if json_depth_over(body, self._max_depth):
            raise NotJsonError(f"request JSON is nested deeper than {self._max_depth} levels")
        return body

    def parse_json(self, data: str | bytes) -> object:
        try:
            return self.decode_json(data)
        except NotJsonError as exc:
            raise HTTPException(400, exc.reason) from exc

    def encode_json(self, data: object) -> str:
        # Text, as WebSocket messages must be.
        return _json_bytes(data).decode()

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        # Strawberry's, with the body encoded once, as bytes (its own takes `encode_json`'s
        # text and encodes it again).
        response = Response(_json_bytes(response_data), media_type="application/json")
        response.headers.raw.extend(sub_response.headers.raw)
        response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # Strawberry answers request-level problems in plain text; clients get GraphQL's shape.
        request = Request(scope=scope, receive=receive)
        try:
            response: Response = await self.plain_post(request) or await self.run(request)
        except ClientDisconnect:
            return  # gone before its body arrived: nobody to answer, nothing went wrong
        except HTTPException as exc:
            code = "NOT_FOUND" if exc.status_code == 404 else "BAD_USER_INPUT"
            response = JSONResponse(
                {"errors": [{"message": exc.reason, "extensions": {"code": code}}]},
                status_code=exc.status_code,
            )
        await response(scope, receive, send)

    async def get_context(self, request: Any, response: Any) -> Context:
        client = request.client.host if request.client else "unknown"
        # A subscription's context lives as long as it does: no cache, or it would go stale.
        cache = not isinstance(request, WebSocket)
        context = Context(
            request=request,
            response=response,
            services=self._services,
            metrics=self._metrics,
            client=f"ip:{client}",
            subscription_slots=self._subscription_slots,
            nonprofit_loader=nonprofit_loader(self._services.catalog, cache=cache),
            initiative_loader=initiative_loader(self._services.catalog, cache=cache),
        )
        if not isinstance(request, WebSocket):
            context.authenticated = await self._authenticate(
                request.headers.get("authorization"), request.headers.get("x-api-key")
            )
        return context

    async def on_ws_connect(self, context: Context) -> None:
        # Browsers cannot set headers on a WebSocket: credentials come in connection_init.
        params = context.connection_params or {}
        headers = context.request.headers
        context.authenticated = await self._authenticate(
            params.get("Authorization") or headers.get("authorization"),
            params.get("X-API-Key") or headers.get("x-api-key"),
        )

    async def _authenticate(
        self, authorization: str | None, api_key: str | None
    ) -> Principal | UnauthenticatedError | None:
        auth = self._services.auth
        try:
            if auth.may_block(authorization, api_key):
                return await run_in_thread(auth.authenticate, authorization, api_key)
            return auth.authenticate(authorization, api_key)  # a thread hop would cost more
        except UnauthenticatedError as exc:
            return exc  # raised by the first resolver that needs to know the caller


def build_app(
    services: Services,
    store: GraphStore,
    app_settings: AppSettings,
    metrics: ApiMetrics,
    close: Callable[[], None],
    graphiql_defaults: GraphiQLDefaults | None = None,  # `make demo` only: holds a token
) -> Starlette:
    """The Starlette app over services built elsewhere (entrypoints.bootstrap): `store` is
    pinged by /readyz, and `close` runs at shutdown."""
    limiter = RateLimiter(app_settings.rate_limit_per_minute)
    ide = graphiql(defaults=graphiql_defaults)
    schema = build_schema(app_settings, limiter, metrics)
    time_resolvers(schema._schema)  # each resolver's time, for slow requests' phases
    graphql = _GraphQLApp(services, schema, metrics, ide.html, app_settings)
    metrics.subscriptions.set_function(services.events.subscriber_count)

    def export_model_metrics() -> None:
        # At scrape time: a promotion or rollback switches the served model without a restart.
        metrics.model_info.clear()
        if (model := services.matches.model) is not None:
            metrics.model_info.labels(model.version).set(1)
            metrics.model_trained.set((model.path / "metrics.json").stat().st_mtime)

    async def store_up() -> bool:
        # Bounded: a frozen store accepts connections and never answers, which must read as
        # down within the probe's own timeout, not after the store client's.
        try:
            with anyio.fail_after(app_settings.ready_timeout_s):
                # Abandoned on timeout: the thread ends when the client's own timeout fires.
                await anyio.to_thread.run_sync(store.ping, abandon_on_cancel=True)
        except (StoreError, TimeoutError):
            metrics.store_up.set(0)
            return False
        metrics.store_up.set(1)
        return True

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        checks = {"model": services.matches.model is not None, "store": await store_up()}
        ready = all(checks.values())
        model = services.matches.model
        body = {"ready": ready, **checks, "model_version": model.version if model else None}
        return JSONResponse(body, status_code=200 if ready else 503)

    metrics_token = app_settings.metrics_token

    async def metrics_endpoint(request: Request) -> Response:
        # Not for the public: loopback (a sidecar, the operator) or the scraper's bearer token.
        host = request.client.host if request.client else ""
        sent = request.headers.get("authorization", "")
        allowed = is_loopback(host) or (
            metrics_token is not None
            and hmac.compare_digest(sent, f"Bearer {metrics_token.get_secret_value()}")
        )
        if not allowed:
            return JSONResponse(
                {"errors": [{"message": "metrics need a bearer token (DONOR_MATCH_METRICS_TOKEN)",
                             "extensions": {"code": "UNAUTHENTICATED"}}]},
                status_code=401,
            )
        await store_up()
        export_model_metrics()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # One BLAS thread: a page's product (nonprofits x 32) is too small to gain from more, the
        # API's parallelism is its processes, and OpenBLAS's idle threads spin between requests
        # (a product every 3.3 ms took 4.4 ms of CPU each with two threads, 0.76 with one).
        blas = threadpool_limits(limits=1, user_api="blas")
        try:  # the funding needs and impact, which the first page would otherwise wait for
            await run_in_thread(services.matches.warm)
        except StoreError as exc:  # served without: the first page reads them, as it would have
            logging.getLogger(__name__).warning("could not read funding needs at start: %s", exc)
        # What was built until now (schema, services, model, needs) lives as long as the process:
        # keep the cycle collector's full collections to what requests leave behind.
        gc.collect()
        gc.freeze()
        async with metrics.runtime.running():  # event-loop lag monitor, GC pause callback
            yield
        blas.restore_original_limits()
        close()

    # Only where a browser origin is allowed: without one the layer would only add `Vary`.
    cors = [
        Middleware(
            CORSMiddleware,
            allow_origins=app_settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
        )
    ] if app_settings.cors_origins else []
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            *ide.routes(),
        ],
        lifespan=lifespan,
        middleware=[
            # Outermost, so a request's phases add up to all of its time in the app.
            Middleware(
                RequestMiddleware,
                metrics=metrics.runtime,
                max_bytes=app_settings.max_body_bytes,
                read_timeout_s=app_settings.body_read_timeout_s,
                server_timing=app_settings.server_timing,
            ),
            *cors,
        ],
    )
    app.state.services = services
    return app
