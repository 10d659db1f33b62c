"""Analysts' read-only Cypher: the anonymized graph only, writes and admin refused, rows capped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import TEST_AUTH, ServedGraph, error_codes
from starlette.testclient import TestClient

from donor_match.services import analytics
from donor_match.services.analytics import refusal
from donor_match.services.auth import Role
from entrypoints.asgi import create_app
from etl.loader import load_tables
from etl.synth import SynthConfig, generate
from graph_store import Statement, StoreForbiddenError, open_analytics_store, open_store

# The API end to end on the production store as well as on the embedded one.
pytestmark = pytest.mark.backends("falkordb", "neo4j")

ANALYST_GRAPH = SynthConfig(donors=40, nonprofits=8, causes=4, regions=3, donations=200, seed=9)
QUERY = "query($c: String!, $p: JSON) { analyticsQuery(cypher: $c, params: $p) "
QUERY += "{ columns rows truncated } }"


@pytest.fixture(scope="module")
def client(served_graph: ServedGraph) -> Iterator[TestClient]:
    analyst_store = open_store(served_graph.store_settings, analyst=True)
    load_tables(analyst_store, generate(ANALYST_GRAPH))
    analyst_store.close()
    settings = served_graph.app_settings.model_copy(update={"analytics_row_cap": 25})
    with TestClient(create_app(settings, served_graph.store_settings, TEST_AUTH)) as test_client:
        yield test_client


def run(client: TestClient, served_graph: ServedGraph, cypher: str,
        params: dict[str, Any] | None = None, role: Role | None = Role.ANALYST) -> dict:
    headers = served_graph.token(role, "ana") if role else {}
    return client.post("/graphql", headers=headers,
                       json={"query": QUERY, "variables": {"c": cypher, "p": params}}).json()


def test_analysts_query_the_anonymized_graph_only(
    client: TestClient, served_graph: ServedGraph
) -> None:
    body = run(client, served_graph, "MATCH (d:Donor) RETURN count(d) AS donors")
    assert body["data"]["analyticsQuery"] == {
        "columns": ["donors"], "rows": [[ANALYST_GRAPH.donors]], "truncated": False
    }
    # The source graph holds more donors than this; none of it is reachable from here.
    assert served_graph.tables["donors"].num_rows != ANALYST_GRAPH.donors


def test_parameters_nodes_and_the_row_cap(client: TestClient, served_graph: ServedGraph) -> None:
    body = run(client, served_graph,
               "MATCH (n:Nonprofit)<-[g:DONATED]-() WHERE g.amount >= $min "
               "RETURN n AS nonprofit, g.amount AS amount", {"min": 0})
    result = body["data"]["analyticsQuery"]
    assert result["columns"] == ["nonprofit", "amount"]
    assert len(result["rows"]) == 25
    assert result["truncated"] is True
    assert result["rows"][0][0]["labels"] == ["Nonprofit"]


@pytest.mark.parametrize(
    "cypher",
    [
        "CREATE (n:Donor {id: 'x'}) RETURN n",
        "MATCH (d:Donor) SET d.name = 'x' RETURN d",
        "MATCH (d:Donor) DETACH DELETE d",
        "MERGE (c:Cause {id: 'x'}) RETURN c",
        "LOAD CSV FROM 'file:///etc/passwd' AS line RETURN line",
        "CALL dbms.listConfig() YIELD name RETURN name",
        "USE neo4j MATCH (n) RETURN n",
        "MATCH (d:Donor) CALL { WITH d RETURN d.id AS x } RETURN x",
        "MATCH (d:Donor) FOREACH (x IN [1] | REMOVE d.name) RETURN d",
        "SHOW DATABASES",
        "CREATE INDEX FOR (d:Donor) ON (d.email)",
    ],
)


def test_writes_schema_and_admin_are_forbidden(
    client: TestClient, served_graph: ServedGraph, cypher: str
) -> None:
    assert error_codes(run(client, served_graph, cypher)) == ["FORBIDDEN"]


def test_keywords_inside_strings_are_not_refused() -> None:
    assert refusal("MATCH (c:Cause) WHERE c.name <> 'CREATE me' RETURN c.name // SET") is None
    assert refusal("CALL db.labels() YIELD label RETURN label") is None


def test_the_store_refuses_writes_on_the_analyst_path_too(served_graph: ServedGraph) -> None:
    # The second fence: even a write the service missed fails on the read-only path.
    store = open_analytics_store(served_graph.store_settings)
    try:
        with pytest.raises(StoreForbiddenError):
            store.read(Statement("probe", "CREATE (n:Probe) RETURN n"))
    finally:
        store.close()


def test_a_write_the_service_missed_is_still_forbidden(
    client: TestClient, served_graph: ServedGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analytics, "refusal", lambda _: None)  # the first fence down
    answer = run(client, served_graph, "CREATE (n:Probe) RETURN n")
    assert error_codes(answer) == ["FORBIDDEN"]


@pytest.mark.parametrize(
    ("role", "code"),
    [(None, "UNAUTHENTICATED"), (Role.DONOR, "FORBIDDEN"), (Role.NONPROFIT, "FORBIDDEN"),
     (Role.INTEGRATOR, "FORBIDDEN")],
)


def test_only_analysts_and_admins(
    client: TestClient, served_graph: ServedGraph, role: Role | None, code: str
) -> None:
    assert error_codes(run(client, served_graph, "RETURN 1 AS one", role=role)) == [code]
    assert "errors" not in run(client, served_graph, "RETURN 1 AS one", role=Role.ADMIN)


def test_broken_cypher_is_bad_input_without_internals(
    client: TestClient, served_graph: ServedGraph
) -> None:
    body = run(client, served_graph, "MATCH (d:Donor RETURN d")
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "falkordb://" not in body["errors"][0]["message"]
