"""One set of repository tests, run on the in-memory repositories, FalkorDB and Neo4j.

The services' unit tests (tests/test_services_unit.py) trust `InMemoryGraph` to answer as the
statements of `neo4j/api/` answer on a store; these tests are what earns that trust. Each test
seeds the same small world (the store through the ETL loader, the fake through its `add_*`
methods) and asserts one behaviour on all three. `--backends falkordb` leaves Neo4j out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from conftest import fresh_store_settings

from donor_match.domain import Cause, Donor, InitiativeDraft, Nonprofit, NonprofitQuery, Region
from donor_match.repositories.memory import InMemoryAnalystGraph, InMemoryGraph
from donor_match.repositories.ports import (
    AnalystGraph,
    AnalystQueryFailedError,
    AnalystQueryRefusedError,
    DonationDraft,
    DonationOutcome,
    DonorContext,
    Repositories,
    SupporterGroup,
)
from donor_match.repositories.store import StoreAnalystGraph, store_repositories
from etl.loader import load_tables
from etl.tables import TABLE_SCHEMAS
from graph_store import GraphStore, Statement, open_analytics_store, open_store

KINDS = ("memory", "falkordb", "neo4j")

WORLD: dict[str, list[dict[str, Any]]] = {
    "regions": [
        {"id": "north", "name": "North", "lat": 41.0, "lon": -74.0},
        {"id": "south", "name": "South", "lat": 40.0, "lon": -74.0},
        {"id": "east", "name": "East", "lat": None, "lon": None},
    ],
    "causes": [
        {"id": "health", "name": "Health"}, {"id": "water", "name": "Water"},
        {"id": "arts", "name": "Arts"},
    ],
    "donors": [
        {"id": "ana", "name": "Ana", "region_id": "north"},
        {"id": "bo", "name": "Bo", "region_id": "south"},
        {"id": "cy", "name": "Cy", "region_id": None},
        {"id": "di", "name": "Di", "region_id": "east"},
    ],
    "nonprofits": [
        {"id": "n1", "name": "Clinic North", "region_id": "north"},
        {"id": "n2", "name": "Wells", "region_id": "south"},
        {"id": "n3", "name": "City Museum", "region_id": "north"},
        {"id": "n4", "name": "Choir", "region_id": "south"},
        {"id": "n5", "name": "Pumps", "region_id": None},
    ],
    "donor_causes": [
        {"donor_id": "ana", "cause_id": "health"}, {"donor_id": "bo", "cause_id": "water"},
        {"donor_id": "bo", "cause_id": "arts"}, {"donor_id": "cy", "cause_id": "arts"},
    ],
    "nonprofit_causes": [
        {"nonprofit_id": "n1", "cause_id": "health"}, {"nonprofit_id": "n2", "cause_id": "water"},
        {"nonprofit_id": "n2", "cause_id": "health"}, {"nonprofit_id": "n3", "cause_id": "arts"},
        {"nonprofit_id": "n4", "cause_id": "arts"}, {"nonprofit_id": "n5", "cause_id": "water"},
    ],
    "donations": [
        {"id": "g1", "donor_id": "ana", "nonprofit_id": "n1", "amount": 10.0, "ts": 1_000},
        {"id": "g2", "donor_id": "bo", "nonprofit_id": "n1", "amount": 20.0, "ts": 1_000},
        {"id": "g3", "donor_id": "bo", "nonprofit_id": "n2", "amount": 30.0, "ts": 1_000},
        {"id": "g4", "donor_id": "bo", "nonprofit_id": "n3", "amount": 5.0, "ts": 1_000},
        {"id": "g5", "donor_id": "cy", "nonprofit_id": "n4", "amount": 7.0, "ts": 1_000},
        {"id": "g6", "donor_id": "cy", "nonprofit_id": "n5", "amount": 3.0, "ts": 1_000},
    ],
}


def in_memory() -> InMemoryGraph:
    graph = InMemoryGraph()
    for r in WORLD["regions"]:
        graph.add_region(r["id"], r["name"], r["lat"], r["lon"])
    for c in WORLD["causes"]:
        graph.add_cause(c["id"], c["name"])
    for d in WORLD["donors"]:
        causes = [dc["cause_id"] for dc in WORLD["donor_causes"] if dc["donor_id"] == d["id"]]
        graph.add_donor(d["id"], d["name"], d["region_id"], causes)
    for n in WORLD["nonprofits"]:
        causes = [nc["cause_id"] for nc in WORLD["nonprofit_causes"]
                  if nc["nonprofit_id"] == n["id"]]
        graph.add_nonprofit(n["id"], n["name"], n["region_id"], causes)
    for g in WORLD["donations"]:
        graph.add_gift(g["id"], g["donor_id"], g["nonprofit_id"], g["amount"], g["ts"])
    return graph


@dataclass
class Seeded:
    repositories: Repositories
    analyst: AnalystGraph
    kind: str
    # What the write-only methods left behind, read past the repositories: feedback as
    # (donor, nonprofit, action, ts, model version), served counts by (hour, model version).
    feedback: Callable[[], list[tuple[Any, ...]]]
    served: Callable[[], dict[tuple[int, str], int]]


FEEDBACK = Statement(
    "test/feedback",
    "MATCH (d:Donor)-[f:FEEDBACK]->(n:Nonprofit) "
    "RETURN d.id AS d, n.id AS n, f.action AS a, f.ts AS ts, f.model_version AS v",
)
SERVED = Statement(
    "test/served", "MATCH (s:MatchesServed) RETURN s.hour AS h, s.model_version AS v, s.count AS c"
)


@pytest.fixture(params=KINDS)
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Seeded]:
    kind = request.param
    if kind == "memory":
        graph = in_memory()
        yield Seeded(
            graph.repositories(),
            InMemoryAnalystGraph(
                {"RETURN 1 AS one": [{"one": 1}], ANALYST_READ: [{"id": "anon-1"}]},
                refused=[WRITE],
            ),
            kind,
            lambda: [(f.donor_id, f.nonprofit_id, f.action, f.ts, f.model_version)
                     for f in graph.feedback],
            lambda: dict(graph.served),
        )
        return
    if kind not in request.config.getoption("--backends").split(","):
        pytest.skip(f"--backends leaves out {kind}")
    settings = fresh_store_settings(kind, request, tmp_path / "var")
    store: GraphStore = open_store(settings)
    analyst = open_analytics_store(settings)
    try:
        anonymized = open_store(settings, analyst=True)  # as `etl anonymize` writes it
        try:
            anonymized.write(Statement("test/anonymized", "CREATE (:Donor {id: 'anon-1'})"))
        finally:
            anonymized.close()
        store.apply_schema()
        load_tables(store, {
            name: pa.Table.from_pylist(rows, schema=TABLE_SCHEMAS[name])
            for name, rows in WORLD.items()
        })
        yield Seeded(
            store_repositories(store), StoreAnalystGraph(analyst), kind,
            lambda: [(r["d"], r["n"], r["a"], r["ts"], r["v"]) for r in store.read(FEEDBACK)],
            lambda: {(r["h"], r["v"]): r["c"] for r in store.read(SERVED)},
        )
    finally:
        store.close()
        analyst.close()


WRITE = "CREATE (:Probe) RETURN 1 AS one"
ANALYST_READ = "MATCH (d:Donor) RETURN d.id AS id"
NORTH, SOUTH = Region("north", "North"), Region("south", "South")
HEALTH, WATER, ARTS = Cause("health", "Health"), Cause("water", "Water"), Cause("arts", "Arts")


# -- catalog ---------------------------------------------------------------------------------


def test_donors_and_nonprofits_by_id(seeded: Seeded) -> None:
    catalog = seeded.repositories.catalog
    assert sorted(catalog.donors(["bo", "nobody", "cy"]), key=lambda d: d.id) == [
        Donor("bo", "Bo", SOUTH, (ARTS, WATER), None),
        Donor("cy", "Cy", None, (ARTS,), None),
    ]
    assert sorted(catalog.nonprofits(["n5", "n2", "n9"]), key=lambda n: n.id) == [
        Nonprofit("n2", "Wells", SOUTH, (HEALTH, WATER), None, None),
        Nonprofit("n5", "Pumps", None, (WATER,), None, None),
    ]


def test_nonprofit_pages_and_filters(seeded: Seeded) -> None:
    catalog = seeded.repositories.catalog
    everything = NonprofitQuery()
    assert catalog.nonprofit_page(everything, "", 3) == ["n1", "n2", "n3"]
    assert catalog.nonprofit_page(everything, "n3", 10) == ["n4", "n5"]
    assert catalog.nonprofit_page(NonprofitQuery(text="  nOrTh "), "", 10) == ["n1"]
    assert catalog.nonprofit_page(NonprofitQuery(text="   "), "", 10) == [f"n{i}" for i in
                                                                          range(1, 6)]
    arts_or_north = NonprofitQuery(cause_ids=("arts",), region_ids=("north",))
    assert catalog.nonprofit_page(arts_or_north, "", 10) == ["n3"]
    # Each filter's own statement: a nonprofit of two asked causes comes once, pages go on.
    water_or_health = NonprofitQuery(cause_ids=("water", "health"))
    assert catalog.nonprofit_page(water_or_health, "", 10) == ["n1", "n2", "n5"]
    assert catalog.nonprofit_page(water_or_health, "n1", 1) == ["n2"]
    assert catalog.nonprofit_page(NonprofitQuery(cause_ids=("water",), text="PUMP"), "", 10) == [
        "n5"]
    assert catalog.nonprofit_page(NonprofitQuery(region_ids=("south", "east")), "", 10) == [
        "n2", "n4"]
    assert catalog.nonprofit_page(NonprofitQuery(region_ids=("south",)), "n2", 10) == ["n4"]
    assert catalog.nonprofit_page(NonprofitQuery(region_ids=("south",), text="ch"), "", 10) == [
        "n4"]
    assert catalog.nonprofit_page(NonprofitQuery(cause_ids=()), "", 10) == []
    assert catalog.nonprofit_page(NonprofitQuery(region_ids=()), "", 10) == []
    assert catalog.nonprofit_ids(NonprofitQuery(cause_ids=("water", "nope"))) == {"n2", "n5"}
    assert catalog.nonprofit_ids(NonprofitQuery(region_ids=())) == set()
    assert catalog.nonprofit_ids(NonprofitQuery(text="ignored")) == {f"n{i}" for i in range(1, 6)}


def test_regions_and_causes_by_name(seeded: Seeded) -> None:
    catalog = seeded.repositories.catalog
    assert catalog.regions() == [Region("east", "East"), NORTH, SOUTH]
    assert catalog.causes() == [ARTS, HEALTH, WATER]


# -- matching's reads ------------------------------------------------------------------------


def test_a_donors_context(seeded: Seeded) -> None:
    matches = seeded.repositories.matches
    assert matches.donor_context("ana") == DonorContext(
        "north", (41.0, -74.0), frozenset({"health"}), frozenset({"n1"})
    )
    assert matches.donor_context("bo") == DonorContext(
        "south", (40.0, -74.0), frozenset({"water", "arts", "health"}),
        frozenset({"n1", "n2", "n3"}),
    )
    assert matches.donor_context("cy") == DonorContext(
        None, None, frozenset({"arts", "water"}), frozenset({"n4", "n5"})
    )
    assert matches.donor_context("di") == DonorContext("east", None, frozenset(), frozenset())
    assert matches.donor_context("nobody") is None


def test_shown_nonprofits_carry_their_regions_coordinates(seeded: Seeded) -> None:
    shown = {s.nonprofit.id: s for s in seeded.repositories.matches.shown(["n1", "n5", "n9"])}
    assert set(shown) == {"n1", "n5"}
    assert shown["n1"].nonprofit == Nonprofit("n1", "Clinic North", NORTH, (HEALTH,), None, None)
    assert (shown["n1"].location, shown["n5"].location) == ((41.0, -74.0), None)


def later(clock: Callable[[], int], than: int) -> int:
    """The store's clock once it has moved past `than` (ms), so that two writes stamp apart."""
    while (now := clock()) <= than:
        time.sleep(0.001)
    return now


def test_needs_sum_a_nonprofits_own_and_its_initiatives(seeded: Seeded) -> None:
    repos = seeded.repositories
    clock = repos.matches.clock
    assert repos.matches.needs() == {}
    first = clock()
    assert repos.profiles.set_funding_need("n1", 100.0)
    assert repos.profiles.set_funding_need("n2", 0.0)
    assert repos.profiles.upsert_initiative(
        InitiativeDraft("n1", "Beds", ("health",), id="i2", funding_need=5.0), "api", now=5_500
    )
    second = later(clock, clock())
    assert repos.profiles.upsert_initiative(
        InitiativeDraft("n2", "Pipes", ("water",), id="i1", funding_need=40.0), "api", now=6_000
    )
    assert repos.matches.needs() == {"n1": 105.0, "n2": 40.0}
    # An initiative's write stamps its nonprofit: n1 before `second`, n2 at or after it.
    assert repos.matches.needs_changed(first) == {"n1": 105.0, "n2": 40.0}
    assert repos.matches.needs_changed(second) == {"n2": 40.0}
    third = later(clock, clock())
    assert repos.profiles.set_funding_need("n1", None)
    assert repos.matches.needs_changed(third) == {"n1": 5.0}
    fourth = later(clock, clock())
    repos.profiles.delete_initiative("i2")
    assert repos.matches.needs_changed(fourth) == {"n1": 0.0}
    assert repos.matches.needs() == {"n2": 40.0}
    assert not repos.profiles.set_funding_need("nobody", 1.0)
    assert repos.matches.needs_changed(later(clock, clock())) == {}


def test_need_changes_are_stamped_by_the_stores_clock(seeded: Seeded) -> None:
    """Whatever the writing process's clock says: a write between two readings of the store's
    clock is found from the first and not from after the second, for each kind of need write."""
    repos = seeded.repositories
    clock = repos.matches.clock
    writes: list[tuple[str, Callable[[], object]]] = [
        ("n1", lambda: repos.profiles.set_funding_need("n1", 10.0)),
        ("n9", lambda: repos.profiles.upsert_nonprofit(
            "n9", "New", None, 20.0, "north", ["arts"])),
        ("n2", lambda: repos.profiles.upsert_initiative(
            InitiativeDraft("n2", "Pipes", ("water",), id="i1", funding_need=30.0), "api",
            now=1)),  # `now` is only the initiative's posted time (epoch seconds)
        ("n2", lambda: repos.profiles.delete_initiative("i1")),
    ]
    for nonprofit_id, write in writes:
        before = later(clock, clock())
        write()
        after = clock()
        assert nonprofit_id in repos.matches.needs_changed(before)
        assert repos.matches.needs_changed(after + 1) == {}
        # Epoch milliseconds, as the statements' `timestamp()` gives them.
        assert abs(after - time.time() * 1000) < 60_000


def test_feedback_needs_both_ends(seeded: Seeded) -> None:
    matches = seeded.repositories.matches
    assert matches.record_feedback("ana", "n2", "CLICKED", 1_000, "v1")
    assert matches.record_feedback("ana", "n2", "CLICKED", 1_001, None)
    assert not matches.record_feedback("ana", "n9", "CLICKED", 1_000, "v1")
    assert not matches.record_feedback("nobody", "n2", "CLICKED", 1_000, "v1")
    assert sorted(seeded.feedback()) == [
        ("ana", "n2", "CLICKED", 1_000, "v1"), ("ana", "n2", "CLICKED", 1_001, None)
    ]
    matches.count_served(3_600, "v1", 2)
    matches.count_served(3_600, "v1", 3)
    matches.count_served(7_200, "v1", 1)
    assert seeded.served() == {(3_600, "v1"): 5, (7_200, "v1"): 1}


# -- profiles --------------------------------------------------------------------------------


def test_donor_preferences_and_region(seeded: Seeded) -> None:
    repos = seeded.repositories
    repos.profiles.set_donor_preferences("ana", ["water", "nope", "water", "arts"], 25.0)
    repos.profiles.set_donor_region("ana", "south")
    repos.profiles.set_donor_region("ana", "nowhere")  # unknown: nothing changes
    repos.profiles.set_donor_preferences("nobody", ["water"], 1.0)
    (ana,) = repos.catalog.donors(["ana"])
    assert ana == Donor("ana", "Ana", SOUTH, (ARTS, WATER), 25.0)
    repos.profiles.set_donor_preferences("ana", [], None)
    assert repos.catalog.donors(["ana"])[0].causes == ()


def test_a_nonprofit_page_is_created_and_replaced(seeded: Seeded) -> None:
    repos = seeded.repositories
    repos.profiles.upsert_nonprofit("n9", "New", "About", 10.0, "north", ["arts", "nope"])
    repos.profiles.upsert_nonprofit("n1", "Clinic", None, None, "south", ["water"])
    assert sorted(repos.catalog.nonprofits(["n9", "n1"]), key=lambda n: n.id) == [
        Nonprofit("n1", "Clinic", SOUTH, (WATER,), None, None),
        Nonprofit("n9", "New", NORTH, (ARTS,), "About", 10.0),
    ]
    assert repos.matches.needs() == {"n9": 10.0}


def test_initiatives_keep_their_owner(seeded: Seeded) -> None:
    repos = seeded.repositories
    draft = InitiativeDraft("n1", "Beds", ("health", "arts"), id="i1", description="Ten beds",
                            funding_goal=100.0, funding_need=60.0)
    assert repos.profiles.upsert_initiative(draft, "api", now=1_000)
    assert repos.profiles.upsert_initiative(
        InitiativeDraft("n1", "More beds", ("health",), id="i1"), "api", now=2_000
    )
    assert not repos.profiles.upsert_initiative(
        InitiativeDraft("n2", "Mine", ("water",), id="i1"), "api", now=3_000
    )
    assert not repos.profiles.upsert_initiative(
        InitiativeDraft("n9", "Nobody's", ("water",), id="i2"), "api", now=3_000
    )
    assert repos.profiles.upsert_initiative(
        InitiativeDraft("n1", "Vaccines", ("water",), id="i0"), "api", now=3_000
    )
    found = repos.catalog.initiatives(["n2", "n1", "n1"])
    assert [(i.id, i.nonprofit_id, i.title, i.causes, i.posted_ts) for i in found] == [
        ("i0", "n1", "Vaccines", (WATER,), 3_000),
        ("i1", "n1", "More beds", (HEALTH,), 1_000),  # first posted at 1,000
    ]
    assert (repos.profiles.initiative_owner("i1"), repos.profiles.initiative_owner("i2")) == (
        "n1", None
    )
    repos.profiles.delete_initiative("i1")
    repos.profiles.delete_initiative("i9")
    assert [i.id for i in repos.catalog.initiatives(["n1"])] == ["i0"]
    assert repos.profiles.initiative_owner("i1") is None


# -- donations -------------------------------------------------------------------------------


def gift(donation_id: str, **change: Any) -> DonationDraft:
    values: dict[str, Any] = {
        "id": donation_id, "donor_id": "ana", "nonprofit_id": "n2", "amount": 12.5, "ts": None,
        "now": 9_000, "writer": "api", "recorded_by": "donor:ana",
    }
    return DonationDraft(**(values | change))


def test_a_gift_is_written_once_and_classified_after(seeded: Seeded) -> None:
    donations = seeded.repositories.donations
    new = donations.record(gift("x1"))
    assert (new.outcome, new.ts) == (DonationOutcome.NEW, 9_000)
    replay = donations.record(gift("x1", now=9_500))
    assert (replay.outcome, replay.ts) == (DonationOutcome.REPLAY, 9_000)
    assert donations.record(gift("x1", ts=9_000)).outcome is DonationOutcome.REPLAY
    assert donations.record(gift("x1", ts=8_000)).outcome is DonationOutcome.DIFFERS
    assert donations.record(gift("x1", amount=13.0)).outcome is DonationOutcome.DIFFERS
    assert donations.record(gift("x1", nonprofit_id="n3")).outcome is DonationOutcome.DIFFERS
    assert donations.record(gift("x1", recorded_by="admin:root")).outcome is (
        DonationOutcome.TAKEN
    )
    assert donations.record(gift("g1", donor_id="ana", nonprofit_id="n1", amount=10.0,
                                 ts=1_000)).outcome is DonationOutcome.TAKEN  # imported
    assert donations.record(gift("x2", nonprofit_id="n9")).outcome is DonationOutcome.UNKNOWN
    assert donations.record(gift("x1", donor_id="nobody")).outcome is DonationOutcome.UNKNOWN
    stamped = donations.record(gift("x3", ts=5_000))
    assert (stamped.outcome, stamped.ts) == (DonationOutcome.NEW, 5_000)
    assert "n2" in (seeded.repositories.matches.donor_context("ana") or DONORLESS).supported


DONORLESS = DonorContext(None, None, frozenset(), frozenset())


# -- insights --------------------------------------------------------------------------------


def test_supporters_of_nonprofits_sharing_a_cause(seeded: Seeded) -> None:
    insights = seeded.repositories.insights

    def groups(found: list[SupporterGroup]) -> list[SupporterGroup]:
        return sorted(found, key=lambda g: g.label)

    # n2 (water, health): its peers are n1 (health; ana 10, bo 20), n5 (water; cy 3) and n2
    # itself (bo 30), on every backend alike.
    assert groups(insights.supporters_by_region("n2")) == [
        SupporterGroup("North", 1, 10.0), SupporterGroup("South", 1, 50.0),
        SupporterGroup("Unknown", 1, 3.0),
    ]
    assert groups(insights.supporters_by_interest("n2")) == [
        SupporterGroup("Arts", 2, None), SupporterGroup("Health", 1, None),
        SupporterGroup("Water", 1, None),
    ]
    assert insights.supporters_by_region("nobody") == []


# -- API keys --------------------------------------------------------------------------------


def test_api_keys(seeded: Seeded) -> None:
    keys = seeded.repositories.api_keys
    keys.create("k1", "digest", "platform", "integrator", 1_000)
    stored = keys.get("k1")
    assert stored is not None
    assert (stored.digest, stored.subject, stored.role, stored.revoked_at) == (
        "digest", "platform", "integrator", None
    )
    assert keys.revoke("k1", 2_000) and keys.revoke("k1", 3_000)
    assert keys.get("k1") is not None and keys.get("k1").revoked_at == 2_000  # type: ignore[union-attr]
    assert not keys.revoke("k9", 2_000)
    assert keys.get("k9") is None


# -- the analysts' graph ---------------------------------------------------------------------


def test_the_analyst_graph_answers_refuses_and_fails_by_type(seeded: Seeded) -> None:
    analyst = seeded.analyst
    assert analyst.run("RETURN 1 AS one", {}) == [{"one": 1}]
    assert analyst.run(ANALYST_READ, {}) == [{"id": "anon-1"}]
    assert analyst.present() is True
    with pytest.raises(AnalystQueryRefusedError):
        analyst.run(WRITE, {})
    with pytest.raises(AnalystQueryFailedError) as failed:
        analyst.run("RETURN nonsense(", {})
    assert "graph store" not in str(failed.value) and "://" not in str(failed.value)
