"""What every resolver gets: the services, wired once per process, and the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strawberry.types import Info

from donor_match.services.admin import AdminService
from donor_match.services.analytics import AnalyticsService
from donor_match.services.auth import AuthService, Principal
from donor_match.services.catalog import CatalogService
from donor_match.services.donations import DonationService
from donor_match.services.events import EventBus
from donor_match.services.insights import InsightsService
from donor_match.services.matching import MatchService
from donor_match.services.models import ModelService
from donor_match.services.profiles import ProfileService
from donor_match.services.served_matches import ServedMatchCounter


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


def services(info: Info[Any, Any]) -> Services:
    return info.context["services"]


def principal(info: Info[Any, Any]) -> Principal | None:
    """The authenticated caller, or None; invalid credentials raise UNAUTHENTICATED here."""
    caller: Principal | Exception | None = info.context.get("principal")
    if isinstance(caller, Exception):
        raise caller
    return caller
