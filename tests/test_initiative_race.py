"""Two nonprofits racing on one initiative id: exactly one owns it, the other is refused."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from conftest import ServedGraph
from starlette.testclient import TestClient

from donor_match.errors import DomainError
from donor_match.repositories.store import StoreProfiles
from donor_match.services.auth import ForbiddenError, Principal, Role
from donor_match.services.events import InMemoryEventBus
from donor_match.services.profiles import InitiativeDraft, ProfileService
from graph_store import GraphStore, Row, Statement, open_store

# Replays and races are decided by each store's own constraint errors: both stores.
pytestmark = pytest.mark.backends("falkordb", "neo4j")

OWNERS = Statement(
    "test/initiative_owners",
    "MATCH (:Initiative {id: $id})-[:INITIATIVE_OF]->(n:Nonprofit) RETURN n.id AS id",
)


class BothCheckBeforeEitherWrites:
    """The real store, except that each upsert waits at a barrier until both racers have made
    their ownership check: the interleaving that gave one initiative two owners."""

    def __init__(self, store: GraphStore, racers: int) -> None:
        self._store = store
        self._barrier = threading.Barrier(racers, timeout=30)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def write(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        if statement.name == "api/upsert_initiative":
            self._barrier.wait()
        return self._store.write(statement, params)


@pytest.fixture(scope="module")
def served_store(served_graph: ServedGraph) -> Iterator[GraphStore]:
    store = open_store(served_graph.store_settings)
    yield store
    store.close()


def test_racing_nonprofits_never_share_an_initiative(
    client: TestClient, served_graph: ServedGraph, served_store: GraphStore
) -> None:
    ids = served_graph.tables["nonprofits"].column("id").to_pylist()
    racers = [ids[56], ids[57]]
    cause = served_graph.tables["causes"].column("id")[0].as_py()
    initiative_id = f"race-{uuid.uuid4()}"
    profiles = ProfileService(
        StoreProfiles(BothCheckBeforeEitherWrites(served_store, len(racers))),
        client.app.state.services.catalog,
        InMemoryEventBus(),
    )
    outcomes: dict[str, object] = {}

    def upsert(nonprofit_id: str) -> None:
        draft = InitiativeDraft(nonprofit_id, f"Mine, says {nonprofit_id}", (cause,),
                                id=initiative_id)
        try:
            outcomes[nonprofit_id] = profiles.upsert_initiative(
                Principal(nonprofit_id, Role.NONPROFIT), draft
            )
        except DomainError as exc:
            outcomes[nonprofit_id] = exc

    threads = [threading.Thread(target=upsert, args=(racer,)) for racer in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    owners = [row["id"] for row in served_store.read(OWNERS, {"id": initiative_id})]
    assert len(owners) == 1, owners
    (winner,) = owners
    (loser,) = set(racers) - {winner}
    assert outcomes[winner].nonprofit_id == winner  # type: ignore[attr-defined]
    assert isinstance(outcomes[loser], ForbiddenError), outcomes[loser]
    title = served_store.read(
        Statement("test/initiative_title", "MATCH (i:Initiative {id: $id}) RETURN i.name AS t"),
        {"id": initiative_id},
    )
    assert title == [{"t": f"Mine, says {winner}"}]
