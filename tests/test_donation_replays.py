"""`recordDonation` replays: nothing changes, nothing is announced twice, no gift is rewritten."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from conftest import ServedGraph, error_codes, graphql, wait_for
from starlette.testclient import TestClient

from donor_match.errors import ConflictError
from donor_match.repositories.store import StoreDonations
from donor_match.services.auth import Principal, Role
from donor_match.services.donations import DonationService
from donor_match.services.events import InMemoryEventBus
from graph_store import GraphStore, Row, Statement, StoreConflictError, open_store

# Replays and races are decided by each store's own constraint errors: both stores.
pytestmark = pytest.mark.backends("falkordb", "neo4j")

RECORD = """mutation($input: RecordDonationInput!) {
  recordDonation(input: $input) { id donorId nonprofitId amount timestamp } }"""
SUBSCRIBE = ("subscription($id: ID!) { donationRecorded(nonprofitId: $id) "
             "{ id amount } }")
STORED = Statement(
    "test/stored_gift",
    "MATCH (d:Donor)-[g:DONATED {id: $id}]->(n:Nonprofit) "
    "RETURN d.id AS donor_id, n.id AS nonprofit_id, g.amount AS amount, g.ts AS ts, "
    "g.load_id AS load_id",
)


@pytest.fixture(scope="module")
def served_store(served_graph: ServedGraph) -> Iterator[GraphStore]:
    store = open_store(served_graph.store_settings)
    yield store
    store.close()


def ids(served_graph: ServedGraph, table: str, *indexes: int) -> list[str]:
    column = served_graph.tables[table].column("id")
    return [column[i].as_py() for i in indexes]


def stored(store: GraphStore, donation_id: str) -> list[Row]:
    return store.read(STORED, {"id": donation_id})


def test_a_replay_changes_nothing_and_is_announced_once(
    client: TestClient, served_graph: ServedGraph, served_store: GraphStore
) -> None:
    (donor,) = ids(served_graph, "donors", 40)
    (nonprofit,) = ids(served_graph, "nonprofits", 40)
    me = served_graph.token(Role.DONOR, donor)
    gift = {"donorId": donor, "nonprofitId": nonprofit, "amount": 30.0,
            "id": f"replay-{uuid.uuid4()}", "timestamp": 1_700_000_000}
    marker = {**gift, "id": f"marker-{uuid.uuid4()}", "amount": 1.0}
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init",
                      "payload": served_graph.token(Role.NONPROFIT, nonprofit)})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "1", "type": "subscribe",
                      "payload": {"query": SUBSCRIBE, "variables": {"id": nonprofit}}})
        wait_for(lambda: client.app.state.services.events.subscriber_count() == 1)
        first = graphql(client, RECORD, me, input=gift)["data"]["recordDonation"]
        # The same content again, and again without its timestamp: the same gift, unchanged.
        assert graphql(client, RECORD, me, input=gift)["data"]["recordDonation"] == first
        untimed = {k: v for k, v in gift.items() if k != "timestamp"}
        assert graphql(client, RECORD, me, input=untimed)["data"]["recordDonation"] == first
        graphql(client, RECORD, me, input=marker)
        seen = [ws.receive_json()["payload"]["data"]["donationRecorded"]["id"] for _ in range(2)]
    # The gift once, then the marker: the replays announced nothing.
    assert seen == [gift["id"], marker["id"]]
    assert stored(served_store, gift["id"]) == [
        {"donor_id": donor, "nonprofit_id": nonprofit, "amount": 30.0, "ts": 1_700_000_000,
         "load_id": "api"}
    ]


def test_the_same_id_with_other_content_is_a_conflict(
    client: TestClient, served_graph: ServedGraph, served_store: GraphStore
) -> None:
    donor, _ = ids(served_graph, "donors", 41, 0)
    nonprofit, other_nonprofit = ids(served_graph, "nonprofits", 41, 42)
    me = served_graph.token(Role.DONOR, donor)
    gift = {"donorId": donor, "nonprofitId": nonprofit, "amount": 12.0,
            "id": f"conflict-{uuid.uuid4()}", "timestamp": 1_700_000_000}
    graphql(client, RECORD, me, input=gift)
    before = stored(served_store, gift["id"])
    for changed in ({"amount": 13.0}, {"timestamp": 1_700_000_001},
                    {"nonprofitId": other_nonprofit}):
        answer = graphql(client, RECORD, me, input={**gift, **changed})
        assert error_codes(answer) == ["CONFLICT"], changed
        assert answer["data"] is None
    assert stored(served_store, gift["id"]) == before


def test_another_principals_or_an_imported_gift_is_never_rewritten_nor_shown(
    client: TestClient, served_graph: ServedGraph, served_store: GraphStore
) -> None:
    owner, intruder = ids(served_graph, "donors", 43, 44)
    (nonprofit,) = ids(served_graph, "nonprofits", 43)
    gift = {"donorId": owner, "nonprofitId": nonprofit, "amount": 77.77,
            "id": f"owned-{uuid.uuid4()}", "timestamp": 1_700_000_000}
    graphql(client, RECORD, served_graph.token(Role.DONOR, owner), input=gift)
    imported = served_graph.tables["donations"].slice(0, 1).to_pylist()[0]
    imported_before = stored(served_store, imported["id"])
    owned_before = stored(served_store, gift["id"])

    as_intruder = served_graph.token(Role.DONOR, intruder)
    taken = graphql(client, RECORD, as_intruder, input={**gift, "donorId": intruder})
    # An integrator may record for the owner, but not take over the owner's own gift either.
    as_platform = served_graph.token(Role.INTEGRATOR, "crm")
    taken_by_platform = graphql(client, RECORD, as_platform, input={**gift, "amount": 1.0})
    # The imported gift's own donor cannot rewrite it through the API.
    as_importee = served_graph.token(Role.DONOR, imported["donor_id"])
    rewrite = {"donorId": imported["donor_id"], "nonprofitId": imported["nonprofit_id"],
               "amount": imported["amount"] + 1, "id": imported["id"]}
    rewritten = graphql(client, RECORD, as_importee, input=rewrite)
    for answer, donation_id in ((taken, gift["id"]), (taken_by_platform, gift["id"]),
                                (rewritten, imported["id"])):
        assert error_codes(answer) == ["CONFLICT"]
        message = answer["errors"][0]["message"]
        # Nothing about the gift that holds the id: not whose, not what.
        assert owner not in message and "77.77" not in message
        assert message == (
            f"donation id {donation_id!r} cannot be used; omit the id to get a new one"
        )
    assert stored(served_store, gift["id"]) == owned_before
    assert stored(served_store, imported["id"]) == imported_before


class FirstWriteLosesRace:
    """The real store, except that the first write of a donation meets the real constraint
    violation a concurrent first write of the same id gets on a store running writes in
    parallel (Neo4j); FalkorDB runs writes one at a time, so it cannot be raced there."""

    def __init__(self, store: GraphStore, violation: StoreConflictError) -> None:
        self._store = store
        self._violation: StoreConflictError | None = violation

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def write(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        if statement.name == "api/record_donation" and self._violation is not None:
            violation, self._violation = self._violation, None
            raise violation
        return self._store.write(statement, params)


def constraint_violation(store: GraphStore, donation_id: str) -> StoreConflictError:
    with pytest.raises(StoreConflictError) as raised:
        store.write(
            Statement("test/duplicate_gift",
                      "MATCH (d:Donor), (n:Nonprofit) WITH d, n LIMIT 1 "
                      "CREATE (d)-[:DONATED {id: $id}]->(n)"),
            {"id": donation_id},
        )
    return raised.value


def test_a_lost_race_is_classified_against_the_winner(
    client: TestClient, served_graph: ServedGraph, served_store: GraphStore
) -> None:
    owner, other = ids(served_graph, "donors", 45, 46)
    (nonprofit,) = ids(served_graph, "nonprofits", 45)
    catalog = client.app.state.services.catalog
    donation_id = f"race-{uuid.uuid4()}"
    won = graphql(client, RECORD, served_graph.token(Role.DONOR, owner),
                  input={"donorId": owner, "nonprofitId": nonprofit, "amount": 5.0,
                         "id": donation_id})["data"]["recordDonation"]
    violation = constraint_violation(served_store, donation_id)

    def service() -> DonationService:
        racing = StoreDonations(FirstWriteLosesRace(served_store, violation))
        return DonationService(racing, catalog, InMemoryEventBus())

    # The winner's own replay, having lost the race to itself: the gift, unchanged.
    replay = service().record(Principal(owner, Role.DONOR), owner, nonprofit, 5.0, donation_id)
    assert (replay.id, replay.amount, replay.ts) == (won["id"], 5.0, won["timestamp"])
    # Another donor: CONFLICT, not an internal error.
    with pytest.raises(ConflictError):
        service().record(Principal(other, Role.DONOR), other, nonprofit, 5.0, donation_id)


def test_the_store_reports_a_duplicate_id_as_a_conflict(served_store: GraphStore) -> None:
    """Both adapters raise the typed error from the server's own code, not a bare StoreError."""
    constraint_violation(served_store, "donation-00000000")  # an imported gift's id


@pytest.mark.parametrize(
    ("change", "named"),
    [({"timestamp": -1}, "timestamp"), ({"timestamp": 0}, "timestamp"),
     ({"timestamp": 2**31 - 1}, "timestamp"), ({"amount": 0.001}, "amount"),
     ({"amount": 0.004}, "amount")],
)
def test_timestamps_and_amounts_are_checked(
    client: TestClient, served_graph: ServedGraph, served_store: GraphStore,
    change: dict[str, Any], named: str,
) -> None:
    (donor,) = ids(served_graph, "donors", 47)
    (nonprofit,) = ids(served_graph, "nonprofits", 47)
    gift = {"donorId": donor, "nonprofitId": nonprofit, "amount": 3.0,
            "id": f"checked-{uuid.uuid4()}", **change}
    answer = graphql(client, RECORD, served_graph.token(Role.DONOR, donor), input=gift)
    assert error_codes(answer) == ["BAD_USER_INPUT"]
    assert answer["errors"][0]["message"].startswith(named)
    assert stored(served_store, gift["id"]) == []
