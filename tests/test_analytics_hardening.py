"""The analyst path under abuse: filter bypasses, large answers, many queries, a missing graph."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from conftest import TEST_AUTH, ServedGraph, error_codes
from starlette.testclient import TestClient

from donor_match.errors import UnavailableError
from donor_match.repositories.store import StoreAnalystGraph
from donor_match.services.analytics import AnalyticsService
from donor_match.services.auth import Principal, Role
from donor_match.services.cypher_check import refusal
from donor_match.services.rate_limit import RateLimitedError
from entrypoints.asgi import create_app
from etl.loader import load_tables
from etl.synth import SynthConfig, generate
from graph_store import GraphStore, Row, Statement, open_analytics_store, open_store

ANALYST_GRAPH = SynthConfig(donors=40, nonprofits=8, causes=4, regions=3, donations=200, seed=9)
QUERY = "query($c: String!, $p: JSON) { analyticsQuery(cypher: $c, params: $p) "
QUERY += "{ columns rows truncated } }"
BYTE_CAP = 120_000


@pytest.fixture(scope="module")
def client(served_graph: ServedGraph) -> Iterator[TestClient]:
    analyst_store = open_store(served_graph.store_settings, analyst=True)
    load_tables(analyst_store, generate(ANALYST_GRAPH))
    analyst_store.close()
    settings = served_graph.app_settings.model_copy(
        update={"analytics_row_cap": 1_000, "analytics_byte_cap": BYTE_CAP}
    )
    with TestClient(create_app(settings, served_graph.store_settings, TEST_AUTH)) as test_client:
        yield test_client


def run(client: TestClient, served_graph: ServedGraph, cypher: str,
        params: dict[str, Any] | None = None) -> dict[str, Any]:
    return client.post("/graphql", headers=served_graph.token(Role.ANALYST, "ana"),
                       json={"query": QUERY, "variables": {"c": cypher, "p": params}}).json()


# Each got past the keyword filter of regular expressions, which read comments, backticks and
# quotes differently from Cypher.
BYPASSES = [
    ("CALL `dbms.procedures`()", "dbms.procedures"),
    ("CALL/**/dbms.listConfig() YIELD name RETURN name", "dbms.listConfig"),
    ("MATCH (`'`) LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l //'", "LOAD"),
    ("RETURN 1 AS `'` UNION LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l AS `'`", "LOAD"),
    ("CALL /* db.labels */ `dbms`.`listConfig`() YIELD name RETURN name", "dbms.listConfig"),
    ("MATCH (n) CALL (n) { RETURN 1 AS x } RETURN x", "subqueries"),
    ("RETURN 1 AS one; CREATE (n:Probe)", "one statement"),
]


@pytest.mark.parametrize(("cypher", "named"), BYPASSES)
def test_filter_bypasses_are_refused_with_a_reason(cypher: str, named: str) -> None:
    reason = refusal(cypher)
    assert reason is not None and named in reason


def test_a_bypass_is_forbidden_through_the_api_before_it_reaches_the_store(
    client: TestClient, served_graph: ServedGraph
) -> None:
    body = run(client, served_graph, BYPASSES[2][0])
    assert error_codes(body) == ["FORBIDDEN"]
    assert "LOAD" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "cypher",
    [
        "MATCH (c:Cause) WHERE c.name <> 'CREATE me' RETURN c.name AS `SET` // DELETE",
        "MATCH (d:Donor) RETURN d.set AS s",  # a property key, not the clause
        "RETURN `x`` CREATE (n) //` AS a",  # one name holding a backtick
        "CALL `db`.`labels`() YIELD label RETURN label",
        "RETURN 'it\\'s; CREATE' AS a /* ; DELETE */",
    ],
)
def test_clause_words_in_names_strings_and_comments_are_not_clauses(cypher: str) -> None:
    assert refusal(cypher) is None


def test_answers_are_capped_in_bytes_as_well_as_rows(
    client: TestClient, served_graph: ServedGraph
) -> None:
    big = "x" * 50_000
    response = client.post(
        "/graphql", headers=served_graph.token(Role.ANALYST, "ana"),
        json={"query": QUERY, "variables": {"c": "UNWIND range(1, 1000) AS i RETURN $big AS v",
                                            "p": {"big": big}}},
    )
    result = response.json()["data"]["analyticsQuery"]
    assert result["truncated"] is True
    assert 1 <= len(result["rows"]) <= BYTE_CAP // len(big)
    assert len(response.content) < BYTE_CAP + 10_000


class HeldStore:
    """The real analyst store, except that reads wait until released: queries that run long."""

    def __init__(self, store: GraphStore) -> None:
        self._store = store
        self.release = threading.Event()
        self.waiting = threading.Semaphore(0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def read(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        if statement.name == "analytics":
            self.waiting.release()
            self.release.wait(30)
        return self._store.read(statement, params)


def test_each_analyst_runs_a_few_queries_at_a_time(served_graph: ServedGraph) -> None:
    real = open_analytics_store(served_graph.store_settings)
    held = HeldStore(real)
    service = AnalyticsService(StoreAnalystGraph(held), 10, per_analyst=2, per_process=3)
    ana, bob = Principal("ana", Role.ANALYST), Principal("bob", Role.ANALYST)
    answers: list[object] = []

    def query(who: Principal) -> None:
        answers.append(service.query(who, "MATCH (d:Donor) RETURN count(d) AS n", None))

    threads = [threading.Thread(target=query, args=(who,)) for who in (ana, ana, bob)]
    try:
        for thread in threads:
            thread.start()
        for _ in threads:
            assert held.waiting.acquire(timeout=30)
        # Ana's third query waits for neither of her two: it is refused at once.
        with pytest.raises(RateLimitedError, match="2 analytics queries at a time"):
            service.query(ana, "RETURN 1 AS one", None)
        # Bob has one running; the process's three slots are full, so his second is refused.
        with pytest.raises(RateLimitedError, match="3 analytics queries are running"):
            service.query(bob, "RETURN 1 AS one", None)
    finally:
        held.release.set()
        for thread in threads:
            thread.join(30)
        real.close()
    assert len(answers) == 3
    # Slots are given back: Ana runs again.
    held.release.set()
    assert service.query(ana, "RETURN 1 AS one", None).rows == [[1]]


def test_a_missing_analyst_graph_is_unavailable_and_says_what_to_run(
    served_graph: ServedGraph,
) -> None:
    settings = served_graph.store_settings.model_copy(
        update={"analyst_graph_name": "never_anonymized"}
    )
    store = open_analytics_store(settings)
    try:
        service = AnalyticsService(StoreAnalystGraph(store), 10)
        with pytest.raises(UnavailableError, match="donor-match etl anonymize"):
            service.query(Principal("ana", Role.ANALYST), "MATCH (d:Donor) RETURN d", None)
    finally:
        store.close()
    app = create_app(served_graph.app_settings, settings, TEST_AUTH)
    with TestClient(app) as missing:
        body = run(missing, served_graph, "MATCH (d:Donor) RETURN d.id AS id")
    assert error_codes(body) == ["UNAVAILABLE"]
    assert "donor-match etl anonymize" in body["errors"][0]["message"]
