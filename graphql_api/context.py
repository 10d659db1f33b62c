"""What every resolver gets: the services, wired once per process, and the caller, as one typed
context object per request (per connection for a WebSocket, whose operations share it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from donor_match.domain import Initiative
from donor_match.services.admin import AdminService
from donor_match.services.analytics import AnalyticsService
from donor_match.services.auth import AuthService, Principal, UnauthenticatedError
from donor_match.services.catalog import CatalogService
from donor_match.services.donations import DonationService
from donor_match.services.events import EventBus
from donor_match.services.insights import InsightsService
from donor_match.services.matching import MatchService
from donor_match.services.models import ModelService
from donor_match.services.profiles import ProfileService
from donor_match.services.served_matches import ServedMatchCounter

if TYPE_CHECKING:  # these modules type their resolvers with Context: imported for typing only
    from graphql_api.limits import SubscriptionSlots
    from graphql_api.observability import ApiMetrics
    from graphql_api.types import Nonprofit


@dataclass(frozen=True)
class Services:
    auth: AuthService
    analytics: AnalyticsService
    admin: AdminService
    catalog: CatalogService
    matches: MatchService
    donations: DonationService
    profiles: ProfileService
    insights: InsightsService
    events: EventBus
    models: ModelService
    served_matches: ServedMatchCounter


@dataclass(eq=False)
class Context:
    """Strawberry's context value (graphql_api.app's get_context builds it)."""

    request: Request | WebSocket
    response: Response | WebSocket | None
    services: Services
    metrics: ApiMetrics
    client: str  # "ip:<address>": whose budget an unauthenticated request spends
    subscription_slots: SubscriptionSlots
    nonprofit_loader: DataLoader[str, Nonprofit | None]
    initiative_loader: DataLoader[str, list[Initiative]]
    # The caller as authenticated, or why not: raised by the first resolver that asks.
    authenticated: Principal | UnauthenticatedError | None = None
    # Strawberry stores a WebSocket's connection_init payload here (its credentials).
    connection_params: dict[str, Any] | None = None
    open_subscriptions: int = 0  # on this WebSocket

    @property
    def over_websocket(self) -> bool:
        return isinstance(self.request, WebSocket)

    def principal(self) -> Principal | None:
        """The authenticated caller, or None; invalid credentials raise UNAUTHENTICATED here."""
        if isinstance(self.authenticated, UnauthenticatedError):
            raise self.authenticated
        return self.authenticated
