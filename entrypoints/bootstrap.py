"""The one place that reads the settings and builds the store, the event bus, the served model
and the services. The ASGI app factory and the CLI commands that need services call it; tests and
benchmarks may hand it their own adapters instead of the configured ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from donor_match.repositories.store import StoreAnalystGraph, store_repositories
from donor_match.services.admin import AdminService
from donor_match.services.analytics import AnalyticsService
from donor_match.services.auth import ApiKeyService, AuthService, TokenService
from donor_match.services.catalog import CatalogService
from donor_match.services.donations import DonationService
from donor_match.services.events import EventBus, InMemoryEventBus, RedisEventBus
from donor_match.services.insights import InsightsService
from donor_match.services.matching import MatchService
from donor_match.services.models import ModelService
from donor_match.services.profiles import ProfileService
from donor_match.services.served_matches import ServedMatchCounter
from donor_match.services.served_model import ServedModel
from donor_match.settings import AppSettings, AuthSettings
from graph_store import GraphStore, StoreSettings, open_analytics_store, open_store
from graphql_api.context import Services


@dataclass(frozen=True)
class Settings:
    """Every setting the process runs with, read from the environment once (or given)."""

    app: AppSettings
    store: StoreSettings
    auth: AuthSettings

    @classmethod
    def load(
        cls,
        app: AppSettings | None = None,
        store: StoreSettings | None = None,
        auth: AuthSettings | None = None,
    ) -> Settings:
        """The given settings objects, and the environment's for those not given."""
        return cls(app or AppSettings(), store or StoreSettings(), auth or AuthSettings())


def event_bus(settings: Settings) -> EventBus:
    """Redis pub/sub where there is a Redis (FalkorDB is one), else in this process only."""
    url = settings.app.redis_url
    if url is None and settings.store.backend == "falkordb":
        password = quote(settings.store.falkordb_secret(), safe="")
        url = (f"redis://:{password}@{settings.store.falkordb_host}:"
               f"{settings.store.falkordb_port}/0")
    return RedisEventBus(url) if url else InMemoryEventBus()


def token_service(settings: Settings) -> TokenService:
    """Signs and verifies bearer tokens; needs no store (`donor-match token create`)."""
    return TokenService(settings.auth)


def build_services(
    settings: Settings,
    store: GraphStore,
    analyst_store: GraphStore,
    events: EventBus,
    model: ServedModel,
) -> Services:
    """Every service, each constructed once, sharing the catalog, the event bus and the model."""
    app = settings.app
    repositories = store_repositories(store)
    catalog = CatalogService(repositories.catalog, page_cache_s=app.catalog_page_cache_s)
    api_keys = ApiKeyService(repositories.api_keys)
    matches = MatchService(
        repositories.matches, catalog, model, app.max_matches, events,
        impact_weight=app.impact_weight, needs_refresh_s=app.needs_refresh_s,
        page_rows_ttl_s=app.page_rows_ttl_s, store_timeout_s=settings.store.timeout_s,
    )
    return Services(
        auth=AuthService(token_service(settings), api_keys),
        admin=AdminService(api_keys),
        analytics=AnalyticsService(
            StoreAnalystGraph(analyst_store), app.analytics_row_cap,
            byte_cap=app.analytics_byte_cap, per_analyst=app.analytics_per_analyst,
            per_process=app.analytics_per_process,
        ),
        catalog=catalog,
        matches=matches,
        donations=DonationService(repositories.donations, catalog, events),
        profiles=ProfileService(
            repositories.profiles, catalog, events, nonprofit_changed=matches.nonprofit_changed
        ),
        insights=InsightsService(repositories.insights, catalog, app.insights_min_group),
        events=events,
        models=ModelService(app.models_dir, app.promotion_tolerance),
        served_matches=ServedMatchCounter(repositories.matches),
    )


@dataclass(frozen=True)
class Runtime:
    """What `bootstrap` built: the services and the adapters that must be closed at the end."""

    settings: Settings
    store: GraphStore
    analyst_store: GraphStore
    events: EventBus
    services: Services

    def close(self) -> None:
        self.store.close()
        self.analyst_store.close()
        self.events.close()


def bootstrap(
    settings: Settings | None = None,
    *,
    wrap_store: Callable[[GraphStore], GraphStore] | None = None,
    store: GraphStore | None = None,
    analyst_store: GraphStore | None = None,
    events: EventBus | None = None,
    model: ServedModel | None = None,
) -> Runtime:
    """Build everything once. Adapters not given are the configured ones; `wrap_store` wraps the
    product store (the API counts its queries)."""
    settings = settings or Settings.load()
    if store is None:
        store = open_store(settings.store)
    if wrap_store is not None:
        store = wrap_store(store)
    if events is None:
        events = event_bus(settings)
    if analyst_store is None:
        analyst_store = open_analytics_store(
            settings.store.model_copy(update={"timeout_s": settings.app.analytics_timeout_s})
        )
    if model is None:
        model = ServedModel(settings.app.models_dir)
    services = build_services(settings, store, analyst_store, events, model)
    return Runtime(settings, store, analyst_store, events, services)
