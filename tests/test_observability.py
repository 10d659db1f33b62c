"""Operations endpoints: /metrics, request ids and JSON logs."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import ServedGraph
from starlette.testclient import TestClient

from donor_match.services.auth import Role
from graphql_api.observability import JsonFormatter


def metric(text: str, name: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(name) and not line.startswith("#")]
    assert values, f"{name} not exported"
    return sum(values)


def test_metrics_count_operations_errors_and_matches(
    client: TestClient, served_graph: ServedGraph
) -> None:
    donor_id = served_graph.tables["donations"].column("donor_id")[0].as_py()
    query = "query Top($d: ID!) { matches(donorId: $d, first: 7) { rank } }"
    client.post("/graphql", json={"query": query, "variables": {"d": donor_id}},
                headers=served_graph.token(Role.DONOR, donor_id))
    client.post("/graphql", json={"query": '{ nonprofit(id: "nope") { id } }'})
    text = client.get("/metrics").text
    assert metric(text, 'donor_match_graphql_request_duration_seconds_count{operation="Top"}') >= 1
    assert metric(text, 'donor_match_graphql_errors_total{code="NOT_FOUND"}') >= 1
    assert metric(text, "donor_match_matches_served_total") >= 7
    assert metric(text, "donor_match_model_info{version=") == 1
    assert metric(text, "donor_match_model_trained_timestamp_seconds") > 1.7e9
    assert metric(text, "donor_match_store_up") == 1
    assert metric(text, "donor_match_subscriptions_active") == 0


def test_request_ids_are_echoed_or_made(client: TestClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32
    assert made != client.get("/healthz").headers["X-Request-ID"]


def test_access_log_is_json_with_the_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="donor_match.access"):
        client.get("/healthz", headers={"X-Request-ID": "trace-me"})
    (record,) = [r for r in caplog.records if r.name == "donor_match.access"]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "request"
    assert entry["path"] == "/healthz"
    assert entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert entry["request_id"] == "trace-me"
