"""Matches with reasons, impact re-ranking and cursor pages, over real HTTP, store and model."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import LOOPBACK, TEST_AUTH, ServedGraph, error_codes, graphql, wait_for
from starlette.testclient import TestClient

from donor_match.reasons import Home, haversine_km
from donor_match.services.auth import Role
from entrypoints.asgi import create_app
from graph_model.artifacts import current_artifact_dir, load_artifact
from graph_model.ranking import explain
from graph_store import open_store, statement

MATCHES = """
query($d: ID!, $first: Int!, $after: String, $w: Float, $f: MatchFilter) {
  matches(donorId: $d, first: $first, after: $after, impactWeight: $w, filter: $f) {
    id rank score probability impact cursor
    nonprofit { id region { id } causes { id name } }
    reasons { sharedCauses { id name } similarDonors distanceKm sameRegion summary }
  }
}
"""
RECORD = """mutation($in: RecordDonationInput!) { recordDonation(input: $in) { id } }"""
NEED = """mutation($n: ID!, $need: Float) {
  setFundingNeed(nonprofitId: $n, fundingNeed: $need) { id fundingNeed } }"""


def rows(served_graph: ServedGraph, table: str) -> list[dict[str, Any]]:
    return served_graph.tables[table].to_pylist()


def active_donor(served_graph: ServedGraph, rank: int = 0) -> str:
    """A donor with much history that other test modules leave alone (they use the first few
    donors, and donor 40, by position)."""
    counts: dict[str, int] = {}
    for row in rows(served_graph, "donations"):
        counts[row["donor_id"]] = counts.get(row["donor_id"], 0) + 1
    used = {r["id"] for r in rows(served_graph, "donors")[:50]}
    ranked = sorted((d for d in counts if d not in used), key=lambda d: (-counts[d], d))
    return ranked[rank]


def matches(
    client: TestClient, served_graph: ServedGraph, donor: str, first: int, **variables: Any
) -> list[dict[str, Any]]:
    body = graphql(
        client, MATCHES, served_graph.token(Role.DONOR, donor), d=donor, first=first, **variables
    )
    assert "errors" not in body, body
    return body["data"]["matches"]


def test_reasons_are_shared_causes_and_distance_from_the_graph(
    client: TestClient, served_graph: ServedGraph
) -> None:
    donor = active_donor(served_graph)
    (me,) = [d for d in rows(served_graph, "donors") if d["id"] == donor]
    regions = {r["id"]: r for r in rows(served_graph, "regions")}
    home = regions[me["region_id"]]
    np_region = {n["id"]: n["region_id"] for n in rows(served_graph, "nonprofits")}
    np_causes: dict[str, set[str]] = {}
    for row in rows(served_graph, "nonprofit_causes"):
        np_causes.setdefault(row["nonprofit_id"], set()).add(row["cause_id"])
    given = {r["nonprofit_id"] for r in rows(served_graph, "donations") if r["donor_id"] == donor}
    mine = {r["cause_id"] for r in rows(served_graph, "donor_causes") if r["donor_id"] == donor}
    mine |= {c for n in given for c in np_causes.get(n, ())}
    cause_names = {c["id"]: c["name"] for c in rows(served_graph, "causes")}

    found = matches(client, served_graph, donor, 20)
    assert len(found) == 20
    for match in found:
        nonprofit = match["nonprofit"]["id"]
        reasons = match["reasons"]
        shared = {c["id"] for c in reasons["sharedCauses"]}
        assert shared == np_causes[nonprofit] & mine
        assert all(c["name"] == cause_names[c["id"]] for c in reasons["sharedCauses"])
        there = regions[np_region[nonprofit]]
        expected = haversine_km(home["lat"], home["lon"], there["lat"], there["lon"])
        assert reasons["distanceKm"] == pytest.approx(expected, abs=0.06)
        assert reasons["sameRegion"] == (there["id"] == home["id"])
        said = " ".join(reasons["summary"])  # the same reasons, as sentences
        assert ("shares your causes" in said) == bool(shared)
        assert all(c["name"] in said for c in reasons["sharedCauses"])
        assert (f"{reasons['similarDonors']} donor" in said) == (reasons["similarDonors"] > 0)
    assert any(m["reasons"]["sharedCauses"] for m in found)  # the planted structure shows


def test_similar_donors_are_counted_in_the_graph_the_served_model_learned_from(
    client: TestClient, served_graph: ServedGraph
) -> None:
    served = current_artifact_dir(served_graph.app_settings.models_dir)
    assert served is not None
    model = load_artifact(served)
    cutoff = model.metrics["train"]["cutoff_ts"]
    supporters_of: dict[str, list[str]] = {}
    for row in rows(served_graph, "donations"):
        if row["ts"] < cutoff:
            supporters_of.setdefault(row["nonprofit_id"], []).append(row["donor_id"])
    donor = active_donor(served_graph, rank=1)
    given = {r["nonprofit_id"] for r in rows(served_graph, "donations") if r["donor_id"] == donor}

    def expected(nonprofit: str, donor_nonprofits: set[str]) -> int:
        return explain(
            donor_causes=[],
            nonprofit_causes=[],
            donor_nonprofits=sorted(donor_nonprofits),
            supporters_of=supporters_of,
            nonprofit=nonprofit,
            donor=donor,
            donor_home=Home(None),
            nonprofit_home=Home(None),
        ).similar_donors

    before = {m["nonprofit"]["id"]: m for m in matches(client, served_graph, donor, 10)}
    counts = {n: m["reasons"]["similarDonors"] for n, m in before.items()}
    assert counts == {n: expected(n, given) for n in before}
    assert any(counts.values())

    # The donor's own gifts are read fresh: a new one brings its nonprofit's supporters in.
    def gain(nonprofit: str) -> int:
        return sum(expected(n, given | {nonprofit}) - counts[n] for n in before if n != nonprofit)

    new = max(sorted(set(supporters_of) - given - set(before)), key=gain)
    assert gain(new) > 0
    gift = {"donorId": donor, "nonprofitId": new, "amount": 5}
    graphql(client, RECORD, served_graph.token(Role.ADMIN, "ops"), **{"in": gift})
    after = {m["nonprofit"]["id"]: m for m in matches(client, served_graph, donor, 10)}
    assert {n: m["reasons"]["similarDonors"] for n, m in after.items()} == {
        n: expected(n, given | {new}) for n in after
    }


def test_cursor_pages_continue_the_ranking(client: TestClient, served_graph: ServedGraph) -> None:
    donor = active_donor(served_graph, rank=2)
    whole = matches(client, served_graph, donor, 12)
    first = matches(client, served_graph, donor, 5)
    second = matches(client, served_graph, donor, 5, after=first[-1]["cursor"])
    third = matches(client, served_graph, donor, 2, after=second[-1]["cursor"])
    ids = [m["nonprofit"]["id"] for m in first + second + third]
    assert ids == [m["nonprofit"]["id"] for m in whole]
    scores = [m["score"] for m in first + second + third]
    assert scores == sorted(scores, reverse=True)

    me = served_graph.token(Role.DONOR, donor)
    for bad in ["nonsense", "bWF0Y2g6eDox", "bm9ucHJvZml0OjE="]:  # garbage, bad score, foreign
        body = graphql(client, MATCHES, me, d=donor, first=5, after=bad)
        assert error_codes(body) == ["BAD_USER_INPUT"], body


@pytest.mark.parametrize("weight", [-0.1, 1.5, 1e9])
def test_impact_weight_outside_zero_to_one_is_bad_input(
    client: TestClient, served_graph: ServedGraph, weight: float
) -> None:
    donor = active_donor(served_graph)
    headers = served_graph.token(Role.DONOR, donor)
    body = graphql(client, MATCHES, headers, d=donor, first=3, w=weight)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "impactWeight" in body["errors"][0]["message"]


def test_impact_reranks_by_unmet_need_at_once(
    client: TestClient, served_graph: ServedGraph
) -> None:
    donor = active_donor(served_graph, rank=3)
    by_model = matches(client, served_graph, donor, 20, w=0.0)
    # At weight 0 the score is the rescaled model score: the first match scores 1. The shown
    # probability is calibrated, so it is not 1 and falls with the score.
    assert by_model[0]["score"] == pytest.approx(1.0)
    probabilities = [m["probability"] for m in by_model]
    assert all(0.0 <= p < 1.0 for p in probabilities) and probabilities[0] < 0.9
    assert probabilities == sorted(probabilities, reverse=True)
    rescaled = {m["nonprofit"]["id"]: m["score"] for m in by_model}
    model_dir = current_artifact_dir(served_graph.app_settings.models_dir)
    assert model_dir is not None
    artifact = load_artifact(model_dir)
    column = {n: i for i, n in enumerate(artifact.nonprofit_ids)}
    expected = artifact.probabilities(donor, [column[n] for n in rescaled])
    assert expected is not None and probabilities == pytest.approx(expected.tolist())
    # The model's 15th choice states a need far beyond anyone else's: impact 1.
    needy = by_model[14]["nonprofit"]["id"]
    as_needy = served_graph.token(Role.NONPROFIT, needy)
    assert "errors" not in graphql(client, NEED, as_needy, n=needy, need=5e11)
    try:
        reranked = matches(client, served_graph, donor, 20, w=1.0)
        ranked = [m["nonprofit"]["id"] for m in reranked]
        assert ranked.index(needy) < 3
        assert reranked[ranked.index(needy)]["impact"] == 1.0
        shown = [m for m in reranked if m["nonprofit"]["id"] in rescaled]
        assert len(shown) >= 5
        for match in shown:
            expected = rescaled[match["nonprofit"]["id"]] * match["impact"]
            assert match["score"] == pytest.approx(expected)
        half = matches(client, served_graph, donor, 20, w=0.5)
        for match in (m for m in half if m["nonprofit"]["id"] in rescaled):
            expected = rescaled[match["nonprofit"]["id"]] * (0.5 + 0.5 * match["impact"])
            assert match["score"] == pytest.approx(expected)
        assert [m["nonprofit"]["id"] for m in half].index(needy) < 14
    finally:
        graphql(client, NEED, as_needy, n=needy, need=None)
    back = matches(client, served_graph, donor, 20, w=0.0)
    assert [m["nonprofit"]["id"] for m in back] == [m["nonprofit"]["id"] for m in by_model]


def test_a_page_of_explained_matches_costs_two_store_round_trips_then_one(
    served_graph: ServedGraph,
) -> None:
    # Funding needs are re-read in the background every needs_refresh_s: not during this test.
    settings = served_graph.app_settings.model_copy(update={"needs_refresh_s": 3600.0})
    app = create_app(settings, served_graph.store_settings, TEST_AUTH)
    with TestClient(app, client=LOOPBACK) as client:

        def queries() -> float:
            text = client.get("/metrics").text
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("donor_match_store_queries_total{")
            )

        donor = active_donor(served_graph)
        matches(client, served_graph, donor, 1)  # funding needs are read once, then kept
        before = queries()
        found = matches(client, served_graph, donor, 20)
        assert len(found) == 20
        # The donor's context, then the 20 nonprofits with their explanations in one statement.
        assert queries() - before == 2
        # Within DONOR_MATCH_PAGE_ROWS_TTL_S the process keeps the nonprofits' rows.
        before = queries()
        assert matches(client, served_graph, donor, 20) == found
        assert queries() - before == 1


def test_a_nonprofit_change_shows_in_matches_at_once_and_elsewhere_within_the_ttl(
    client: TestClient, served_graph: ServedGraph
) -> None:
    donor = active_donor(served_graph, rank=6)
    shown = """query($d: ID!) {
      matches(donorId: $d, first: 5, impactWeight: 0) { nonprofit { id fundingNeed } } }"""

    def needs_shown(api: TestClient) -> dict[str, float | None]:
        body = graphql(api, shown, served_graph.token(Role.DONOR, donor), d=donor)
        found = body["data"]["matches"]
        return {m["nonprofit"]["id"]: m["nonprofit"]["fundingNeed"] for m in found}

    settings = served_graph.app_settings.model_copy(update={"page_rows_ttl_s": 0.5})
    with TestClient(create_app(settings, served_graph.store_settings, TEST_AUTH)) as other:
        before = needs_shown(client)
        assert needs_shown(other) == before
        target, need = next(iter(before.items()))
        as_target = served_graph.token(Role.NONPROFIT, target)
        assert "errors" not in graphql(client, NEED, as_target, n=target, need=12345.0)
        try:
            assert needs_shown(client)[target] == 12345.0  # the process that changed it
            wait_for(lambda: needs_shown(other)[target] == 12345.0)
        finally:
            graphql(client, NEED, as_target, n=target, need=need)
        assert needs_shown(client)[target] == need


def test_initiative_needs_count_toward_impact(
    client: TestClient, served_graph: ServedGraph
) -> None:
    donor = active_donor(served_graph, rank=4)
    target = matches(client, served_graph, donor, 10, w=0.0)[9]["nonprofit"]
    cause = target["causes"][0]["id"]
    owner = served_graph.token(Role.NONPROFIT, target["id"])
    created = graphql(
        client,
        """mutation($in: InitiativeInput!) { upsertInitiative(input: $in) { id } }""",
        owner,
        **{
            "in": {
                "nonprofitId": target["id"],
                "title": "Roof",
                "causeIds": [cause],
                "fundingGoal": 6e11,
                "fundingNeed": 5e11,
            }
        },
    )
    try:
        found = {m["nonprofit"]["id"]: m for m in matches(client, served_graph, donor, 10, w=1.0)}
        assert found[target["id"]]["impact"] == 1.0
    finally:
        graphql(
            client,
            "mutation($id: ID!) { deleteInitiative(id: $id) }",
            owner,
            id=created["data"]["upsertInitiative"]["id"],
        )
    again = {m["nonprofit"]["id"]: m for m in matches(client, served_graph, donor, 10, w=0.0)}
    assert again[target["id"]]["impact"] < 1.0


def test_a_need_set_through_one_api_process_reaches_another_within_its_refresh(
    client: TestClient, served_graph: ServedGraph
) -> None:
    donor = active_donor(served_graph, rank=5)
    settings = served_graph.app_settings.model_copy(update={"needs_refresh_s": 0.2})
    with TestClient(create_app(settings, served_graph.store_settings, TEST_AUTH)) as other:
        by_model = matches(other, served_graph, donor, 15, w=0.0)
        needy = by_model[14]["nonprofit"]["id"]
        as_needy = served_graph.token(Role.NONPROFIT, needy)
        assert "errors" not in graphql(client, NEED, as_needy, n=needy, need=5e11)
        try:

            def ranked_first() -> bool:
                return matches(other, served_graph, donor, 1, w=1.0)[0]["nonprofit"]["id"] == needy

            wait_for(ranked_first)
        finally:
            graphql(client, NEED, as_needy, n=needy, need=None)
        wait_for(lambda: not ranked_first())


def test_changed_needs_are_read_by_their_stamp_with_initiatives_summed(
    served_graph: ServedGraph,
) -> None:
    earlier, later = (n["id"] for n in rows(served_graph, "nonprofits")[-2:])
    cause = rows(served_graph, "causes")[0]["id"]
    store = open_store(served_graph.store_settings)
    set_need = statement("api/set_funding_need")

    def clock_past(than: int) -> int:
        """The store's clock (ms, what the writes stamp) once it has moved past `than`."""
        while (now := int(store.read(statement("api/store_clock"))[0]["now"])) <= than:
            time.sleep(0.001)
        return now

    initiative = {
        "id": "initiative-stamp-test",
        "nonprofit_id": later,
        "title": "Well",
        "description": None,
        "funding_goal": 900.0,
        "funding_need": 700.0,
        "cause_ids": [cause],
        "now": int(time.time()),
        "load_id": "test",
    }
    try:
        store.write(set_need, {"id": earlier, "funding_need": 100.0})
        stamp = clock_past(clock_past(0))
        store.write(set_need, {"id": later, "funding_need": 50.0})
        store.write(statement("api/upsert_initiative"), initiative)
        changed = store.read(statement("api/nonprofit_needs_changed"), {"since": stamp})
        assert [(r["id"], r["need"]) for r in changed] == [(later, 750.0)]
        stamp = clock_past(clock_past(0))
        store.write(statement("api/delete_initiative"), {"id": initiative["id"]})
        changed = store.read(statement("api/nonprofit_needs_changed"), {"since": stamp})
        assert [(r["id"], r["need"]) for r in changed] == [(later, 50.0)]
    finally:  # stamped now, so that API processes that read the test's needs read them gone
        for nonprofit in (earlier, later):
            store.write(set_need, {"id": nonprofit, "funding_need": None})
        store.close()
