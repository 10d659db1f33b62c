"""What every resolver gets: the services, wired once per process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strawberry.types import Info

from donor_match.services.catalog import CatalogService
from donor_match.services.donations import DonationService
from donor_match.services.events import InMemoryEventBus
from donor_match.services.matching import MatchService


@dataclass(frozen=True)
class Services:
    catalog: CatalogService
    matches: MatchService
    donations: DonationService
    events: InMemoryEventBus


def services(info: Info[Any, Any]) -> Services:
    return info.context["services"]
