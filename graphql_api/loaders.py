"""Per-request DataLoaders: nested fields that need the same kind of node share one store read."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from donor_match.domain import Initiative
from donor_match.services.catalog import CatalogService
from graphql_api.observability import run_in_thread
from graphql_api.types import Nonprofit


def nonprofit_loader(catalog: CatalogService, *, cache: bool) -> DataLoader[str, Nonprofit | None]:
    """Nonprofits by id, batched per event-loop tick; None for ids that do not exist."""

    async def load(ids: list[str]) -> list[Nonprofit | None]:
        found = {n.id: n for n in await run_in_thread(catalog.nonprofits, ids)}
        return [Nonprofit.of(found[i]) if i in found else None for i in ids]

    return DataLoader(load_fn=load, cache=cache)


def initiative_loader(
    catalog: CatalogService, *, cache: bool
) -> DataLoader[str, list[Initiative]]:
    """Each nonprofit's initiatives, batched per event-loop tick: one read for a whole page."""

    async def load(ids: list[str]) -> list[list[Initiative]]:
        found = await run_in_thread(catalog.initiatives, ids)
        return [found[i] for i in ids]

    return DataLoader(load_fn=load, cache=cache)
