"""The ASGI app factory uvicorn runs (`uvicorn --factory entrypoints.asgi:create_app`, the image's
command) and the in-process server of `donor-match serve`, `demo` and `quickstart`."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from donor_match.settings import AppSettings, AuthSettings
from entrypoints.bootstrap import Settings, bootstrap
from graph_store import StoreSettings
from graphql_api.app import build_app
from graphql_api.graphiql import GraphiQLDefaults
from graphql_api.observability import ApiMetrics, CountingStore, configure_json_logging
from graphql_api.server import with_timeouts


def create_app(
    app_settings: AppSettings | None = None,
    store_settings: StoreSettings | None = None,
    auth_settings: AuthSettings | None = None,
    graphiql_defaults: GraphiQLDefaults | None = None,  # `make demo` only: holds a token
) -> Starlette:
    """The API over freshly bootstrapped services; settings not given come from the
    environment."""
    settings = Settings.load(app_settings, store_settings, auth_settings)
    metrics = ApiMetrics()
    runtime = bootstrap(
        settings, wrap_store=lambda store: CountingStore(store, metrics.store_queries)
    )
    return build_app(
        runtime.services, runtime.store, settings.app, metrics, runtime.close,
        graphiql_defaults=graphiql_defaults,
    )


def uvicorn_options(settings: AppSettings) -> dict[str, Any]:
    """What uvicorn needs beyond the app (`donor-match serve`; deploy/Dockerfile's CMD says the
    same): X-Forwarded-For only from the configured ingress, WebSocket messages no larger
    than a request body (uvicorn's default is 16 MiB), and bounds on receiving headers and on
    an idle keep-alive connection."""
    return {
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "ws_max_size": settings.max_body_bytes,
        "http": with_timeouts(settings.header_read_timeout_s, settings.keep_alive_timeout_s),
    }


def serve(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    graphiql_defaults: GraphiQLDefaults | None = None,
) -> None:
    """The API under uvicorn in this process, until it is stopped."""
    import uvicorn

    configure_json_logging()
    uvicorn.run(
        create_app(settings.app, settings.store, settings.auth, graphiql_defaults),
        host=host or settings.app.api_host,
        port=port or settings.app.api_port,
        log_config=None,  # uvicorn logs through the JSON handler too
        access_log=False,  # RequestMiddleware writes one access line per request
        **uvicorn_options(settings.app),
    )
