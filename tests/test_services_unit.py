"""The services on in-memory repositories: matching, profiles, donations, insights, analytics.

No store server and no TensorFlow: the graph is `InMemoryGraph` (held to the stores' behaviour
by tests/test_repository_contract.py) and the served model a hand-made `ModelArtifact`, so the
rules of each service are tested in milliseconds. The API tests cover the same paths end to end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from donor_match.domain import InitiativeDraft, NonprofitQuery
from donor_match.errors import ConflictError, InvalidInputError, NotFoundError, UnavailableError
from donor_match.repositories.memory import InMemoryAnalystGraph, InMemoryGraph
from donor_match.services.analytics import AnalyticsForbiddenError, AnalyticsService
from donor_match.services.auth import ForbiddenError, Principal, Role, UnauthenticatedError
from donor_match.services.catalog import CatalogService
from donor_match.services.donations import DonationService
from donor_match.services.events import donation_topic, matches_topic, nonprofit_topic
from donor_match.services.ids import decode_match_cursor
from donor_match.services.insights import InsightsService
from donor_match.services.matching import FeedbackAction, MatchService
from donor_match.services.profiles import NonprofitProfile, ProfileService
from graph_model.artifacts import ModelArtifact

ADMIN = Principal("root", Role.ADMIN)
ANA = Principal("ana", Role.DONOR)
NONPROFITS = ["n1", "n2", "n3", "n4", "n5"]


class RecordedEvents:
    """An event bus that keeps what was published, for the assertions."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        self.published.append((topic, event))

    async def subscribe(self, topic: str) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError
        yield {}

    def subscriber_count(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def topics(self) -> list[str]:
        return [topic for topic, _ in self.published]


class FixedModel:
    def __init__(self, model: ModelArtifact | None) -> None:
        self.model = model

    def current(self) -> ModelArtifact | None:
        return self.model


def world() -> InMemoryGraph:
    """Two regions a degree of latitude apart; ana (north, health) gave to n1, as did bo, who
    also gave to n2 and n3."""
    graph = InMemoryGraph()
    graph.add_region("north", "North", 41.0, -74.0)
    graph.add_region("south", "South", 40.0, -74.0)
    graph.add_cause("health", "Health")
    graph.add_cause("water", "Water")
    graph.add_cause("arts", "Arts")
    graph.add_donor("ana", "Ana", "north", ["health"])
    graph.add_donor("bo", "Bo", "south", ["water", "arts"])
    graph.add_donor("cy", "Cy", None, ["arts"])
    graph.add_nonprofit("n1", "Clinic", "north", ["health"])
    graph.add_nonprofit("n2", "Wells", "south", ["water", "health"])
    graph.add_nonprofit("n3", "Museum", "north", ["arts"])
    graph.add_nonprofit("n4", "Choir", "south", ["arts"])
    graph.add_nonprofit("n5", "Pumps", None, ["water"])
    graph.add_gift("g1", "ana", "n1", 10.0, 1_000)
    graph.add_gift("g2", "bo", "n1", 20.0, 1_000)
    graph.add_gift("g3", "bo", "n2", 30.0, 1_000)
    graph.add_gift("g4", "bo", "n3", 5.0, 1_000)
    graph.add_gift("g5", "cy", "n4", 7.0, 1_000)
    return graph


def model(graph: InMemoryGraph) -> ModelArtifact:
    """Embeddings that rank n2 > n3 > n4 > n5 > n1 for every donor (one dimension)."""
    donors = sorted(graph.donor_rows)
    weights = {"n1": 0.1, "n2": 0.9, "n3": 0.7, "n4": 0.5, "n5": 0.3}
    gifts = [(donors.index(g.donor_id), NONPROFITS.index(g.nonprofit_id))
             for g in graph.gifts.values()]
    return ModelArtifact(
        path=Path("in-memory"), version="v-test", snapshot_hash="none",
        donor_ids=donors, nonprofit_ids=NONPROFITS,
        donor_embeddings=np.ones((len(donors), 1)),
        nonprofit_embeddings=np.array([[weights[n]] for n in NONPROFITS]),
        gift_donors=np.array([d for d, _ in gifts]),
        gift_nonprofits=np.array([n for _, n in gifts]),
        metrics={},
    )


class Services:
    def __init__(self, graph: InMemoryGraph | None = None, *, served: bool = True) -> None:
        self.graph = graph or world()
        self.events = RecordedEvents()
        self.catalog = CatalogService(self.graph)
        self.matches = MatchService(
            self.graph, self.catalog, FixedModel(model(self.graph) if served else None),
            max_first=10, events=self.events, store_timeout_s=10.0,
        )
        self.profiles = ProfileService(
            self.graph, self.catalog, self.events, nonprofit_changed=self.matches.nonprofit_changed
        )
        self.donations = DonationService(self.graph, self.catalog, self.events)


# -- matching --------------------------------------------------------------------------------


def test_matches_rank_by_the_model_leave_out_gifts_and_explain_themselves() -> None:
    services = Services()
    found = services.matches.matches(ANA, "ana", 10)
    assert [m.nonprofit.id for m in found] == ["n2", "n3", "n4", "n5"]  # n1: ana gave there
    assert [m.rank for m in found] == [1, 2, 3, 4]
    wells = found[0].reasons
    assert [c.id for c in wells.shared_causes] == ["health"]
    assert wells.similar_donors == 1  # bo gave to n1, like ana, and to n2
    assert (wells.same_region, wells.distance_km) == (False, pytest.approx(111.2, abs=0.1))
    museum = found[1].reasons
    assert (museum.shared_causes, museum.same_region, museum.distance_km) == ((), True, 0.0)
    pumps = found[3].reasons
    assert (pumps.same_region, pumps.distance_km) == (False, None)  # no region: unknown
    assert pumps.summary() == []


def test_pages_continue_after_the_cursor() -> None:
    services = Services()
    first = services.matches.matches(ANA, "ana", 2)
    rest = services.matches.matches(ANA, "ana", 10, after=first[-1].cursor)
    assert [m.nonprofit.id for m in first + rest] == ["n2", "n3", "n4", "n5"]
    assert decode_match_cursor(first[-1].cursor)[1] == NONPROFITS.index("n3")
    with pytest.raises(InvalidInputError, match="not a match cursor"):
        services.matches.matches(ANA, "ana", 2, after="bm9wZQ==")


def test_impact_reorders_by_the_need_a_profile_states() -> None:
    services = Services()
    assert [m.impact for m in services.matches.matches(ANA, "ana", 10)] == [0.0] * 4
    services.profiles.set_funding_need(Principal("n4", Role.NONPROFIT), "n4", 1e6)
    found = services.matches.matches(ANA, "ana", 10, impact_weight=1.0)
    assert found[0].nonprofit.id == "n4"  # the only nonprofit with a need
    assert found[0].impact == 1.0 and found[0].nonprofit.funding_need == 1e6
    assert services.matches.matches(ANA, "ana", 1)[0].nonprofit.id == "n2"  # the default: 0
    with pytest.raises(InvalidInputError, match="impactWeight must be within"):
        services.matches.matches(ANA, "ana", 10, impact_weight=1.5)


def test_matching_refuses_what_it_cannot_serve() -> None:
    services = Services()
    with pytest.raises(NotFoundError):
        services.matches.matches(ADMIN, "nobody", 5)
    with pytest.raises(ForbiddenError):
        services.matches.matches(Principal("bo", Role.DONOR), "ana", 5)
    with pytest.raises(UnauthenticatedError):
        services.matches.matches(None, "ana", 5)
    with pytest.raises(InvalidInputError, match="first must be"):
        services.matches.matches(ANA, "ana", 11)
    with pytest.raises(UnavailableError, match="no trained model"):
        Services(served=False).matches.matches(ANA, "ana", 5)


def test_feedback_is_stored_for_known_matches_only() -> None:
    services = Services()
    (match,) = services.matches.matches(ANA, "ana", 1)
    services.matches.record_feedback(ANA, match.id, FeedbackAction.CLICKED)
    (stored,) = services.graph.feedback
    assert (stored.donor_id, stored.nonprofit_id, stored.action, stored.model_version) == (
        "ana", "n2", "CLICKED", "v-test"
    )
    gone = services.matches.matches(ANA, "ana", 1)[0].id
    del services.graph.nonprofit_rows["n2"]
    with pytest.raises(NotFoundError, match="n2"):
        services.matches.record_feedback(ANA, gone, FeedbackAction.DISMISSED)


# -- profiles --------------------------------------------------------------------------------


def test_donor_preferences_replace_causes_and_announce_a_change() -> None:
    services = Services()
    donor = services.profiles.set_donor_preferences(ANA, "ana", ["water", "arts"], "south", 50.0)
    assert ([c.id for c in donor.causes], donor.region, donor.budget) == (
        ["arts", "water"], services.catalog.regions()[1], 50.0
    )
    assert services.events.topics() == [matches_topic("ana")]
    with pytest.raises(InvalidInputError, match="unknown cause ids: nope"):
        services.profiles.set_donor_preferences(ANA, "ana", ["nope"])


def test_a_nonprofit_edits_its_own_page_and_matching_shows_it_at_once() -> None:
    services = Services()
    services.matches.matches(ANA, "ana", 10)  # the page's nonprofits are kept for a while
    me = Principal("n2", Role.NONPROFIT)
    page = services.profiles.upsert_nonprofit(
        me, NonprofitProfile("n2", "  Deep Wells ", "north", ("water",), "Wells for all", 500.0)
    )
    assert (page.name, page.region and page.region.id, page.funding_need) == (
        "Deep Wells", "north", 500.0
    )
    assert services.matches.matches(ANA, "ana", 1)[0].nonprofit.name == "Deep Wells"
    assert services.events.topics() == [nonprofit_topic("n2")]
    with pytest.raises(ForbiddenError):
        services.profiles.upsert_nonprofit(me, NonprofitProfile("n3", "Mine", "north", ("arts",)))
    with pytest.raises(NotFoundError):
        services.profiles.set_funding_need(ADMIN, "nobody", 1.0)


def test_catalog_pages_are_kept_briefly_and_an_edit_through_the_process_shows_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    graph = world()
    reads: list[tuple[Any, ...]] = []
    read = graph.nonprofit_page
    monkeypatch.setattr(graph, "nonprofit_page", lambda *args: reads.append(args) or read(*args))
    catalog = CatalogService(graph, page_cache_s=60)
    profiles = ProfileService(graph, catalog, RecordedEvents())
    everything = NonprofitQuery()
    first = catalog.nonprofit_page(everything, 2, None)
    assert catalog.nonprofit_page(everything, 2, None) == first == (["n1", "n2"], True)
    assert len(reads) == 1
    catalog.nonprofit_page(everything, 2, "n2")  # another page: another read
    assert len(reads) == 2
    graph.add_nonprofit("n0", "Loaded", None, [])  # as an ETL load would: seen once it expires
    assert catalog.nonprofit_page(everything, 2, None) == first
    profiles.upsert_nonprofit(ADMIN, NonprofitProfile("n00", "Zero", "north", ("arts",)))
    assert catalog.nonprofit_page(everything, 2, None) == (["n0", "n00"], True)


def test_initiatives_stay_with_their_nonprofit() -> None:
    services = Services()
    owner, other = Principal("n1", Role.NONPROFIT), Principal("n2", Role.NONPROFIT)
    made = services.profiles.upsert_initiative(
        owner, InitiativeDraft("n1", "Vaccines", ("health",), funding_goal=100.0,
                               funding_need=40.0)
    )
    assert (made.nonprofit_id, [c.id for c in made.causes], made.posted_ts is not None) == (
        "n1", ["health"], True
    )
    assert services.graph.needs()["n1"] == 40.0
    with pytest.raises(ForbiddenError):
        services.profiles.upsert_initiative(
            other, InitiativeDraft("n2", "Taken", ("water",), id=made.id)
        )
    with pytest.raises(InvalidInputError, match="cannot move"):
        services.profiles.upsert_initiative(
            ADMIN, InitiativeDraft("n2", "Moved", ("water",), id=made.id)
        )
    with pytest.raises(InvalidInputError, match="must not exceed"):
        services.profiles.upsert_initiative(
            owner, InitiativeDraft("n1", "Big", ("health",), funding_goal=1.0, funding_need=2.0)
        )
    services.profiles.delete_initiative(owner, made.id)
    assert services.catalog.initiatives(["n1"]) == {"n1": []}
    with pytest.raises(NotFoundError):
        services.profiles.delete_initiative(owner, made.id)


# -- donations -------------------------------------------------------------------------------


def test_a_gift_is_recorded_once_and_announced_once() -> None:
    services = Services()
    gift = services.donations.record(ANA, "ana", "n2", 12.345, "gift-1", ts=2_000)
    assert (gift.amount, gift.ts) == (12.35, 2_000)
    again = services.donations.record(ANA, "ana", "n2", 12.345, "gift-1")
    assert again == gift
    assert services.events.topics() == [donation_topic("n2"), matches_topic("ana")]
    with pytest.raises(ConflictError, match="already recorded"):
        services.donations.record(ANA, "ana", "n2", 99.0, "gift-1")
    with pytest.raises(ConflictError, match="cannot be used"):
        services.donations.record(ANA, "ana", "n2", 10.0, "g1")  # an imported gift's id
    with pytest.raises(ConflictError, match="cannot be used"):
        services.donations.record(Principal("bo", Role.DONOR), "bo", "n2", 12.35, "gift-1")
    # A new gift brings its nonprofit into the donor's supported set: no longer matched.
    assert "n2" not in [m.nonprofit.id for m in services.matches.matches(ANA, "ana", 10)]


def test_a_gift_names_what_is_wrong_with_it() -> None:
    services = Services()
    with pytest.raises(NotFoundError, match="nonprofit 'nope'"):
        services.donations.record(ANA, "ana", "nope", 5.0)
    with pytest.raises(InvalidInputError, match="amount"):
        services.donations.record(ANA, "ana", "n2", 0.001)
    with pytest.raises(InvalidInputError, match="timestamp"):
        services.donations.record(ANA, "ana", "n2", 5.0, ts=-1)
    with pytest.raises(InvalidInputError, match="whitespace"):
        services.donations.record(ANA, "ana", "n2", 5.0, " spaced ")
    assert services.events.published == []


# -- insights --------------------------------------------------------------------------------


def test_insights_count_supporters_of_similar_nonprofits_and_suppress_small_groups() -> None:
    graph = world()
    for i in range(3):
        graph.add_donor(f"d{i}", f"D{i}", "north", ["water"])
        graph.add_gift(f"w{i}", f"d{i}", "n5", 10.0 + i, 1_000)
    service = InsightsService(graph, CatalogService(graph), min_group=3)
    found = service.for_nonprofit(Principal("n2", Role.NONPROFIT), "n2")
    # n2 works on water and health: its peers are n1 (health) and n5 (water).
    assert [(g.label, g.donors, g.total_amount) for g in found.supporter_regions] == [
        ("North", 4, 43)  # ana's 10 to n1 and d0-d2's 33 to n5; bo (south) alone: suppressed
    ]
    assert [(g.label, g.donors) for g in found.supporter_interests] == [("Water", 4)]
    assert found.suppressed_groups == 3  # South (bo), Health (ana), Arts (bo)
    with pytest.raises(ForbiddenError):
        service.for_nonprofit(Principal("n1", Role.NONPROFIT), "n2")


# -- analytics -------------------------------------------------------------------------------


def test_analytics_caps_answers_and_names_failures() -> None:
    rows = [{"id": f"donor-{i}", "gifts": i} for i in range(5)]
    graph = InMemoryAnalystGraph(
        {"MATCH (d:Donor) RETURN d.id AS id, d.gifts AS gifts": rows},
        refused=["MATCH (d:Donor) RETURN count(d) AS n"],  # as the store's read-only path would
    )
    service = AnalyticsService(graph, row_cap=3)
    analyst = Principal("ana", Role.ANALYST)
    answer = service.query(analyst, "MATCH (d:Donor) RETURN d.id AS id, d.gifts AS gifts",
                           {"limit": 3})
    assert (answer.columns, answer.rows, answer.truncated) == (
        ["id", "gifts"], [["donor-0", 0], ["donor-1", 1], ["donor-2", 2]], True
    )
    assert graph.ran[-1][1] == {"limit": 3}
    with pytest.raises(InvalidInputError, match="query failed: Invalid input"):
        service.query(analyst, "RETURN nonsense(", None)
    with pytest.raises(AnalyticsForbiddenError, match="read-only"):
        service.query(analyst, "MATCH (d:Donor) RETURN count(d) AS n", None)
    with pytest.raises(AnalyticsForbiddenError):  # refused before it reaches the graph
        service.query(analyst, "MATCH (d) DETACH DELETE d", None)
    with pytest.raises(InvalidInputError, match="params must be an object"):
        service.query(analyst, "RETURN 1", [1])
    with pytest.raises(ForbiddenError):
        service.query(ANA, "RETURN 1", None)


def test_an_analytics_query_past_the_time_limit_says_so_not_that_the_graph_is_missing() -> None:
    # A busy analyst store may fail its presence check too: a slow query must not be answered
    # with "build the analyst graph" (the 1M soak's analyst saw UNAVAILABLE so).
    heavy = "MATCH (d:Donor)-[g:DONATED]->() RETURN sum(g.amount) AS total"
    service = AnalyticsService(InMemoryAnalystGraph(slow=[heavy], present=False), row_cap=3)
    with pytest.raises(InvalidInputError, match="ran past the analysts' time limit"):
        service.query(Principal("ana", Role.ANALYST), heavy, None)


def test_analytics_on_a_missing_graph_is_unavailable() -> None:
    query = "MATCH (d:Donor) RETURN d.id AS id"
    service = AnalyticsService(InMemoryAnalystGraph({query: []}, present=False), row_cap=3)
    with pytest.raises(UnavailableError, match="donor-match etl anonymize"):
        service.query(Principal("ana", Role.ANALYST), query, None)
