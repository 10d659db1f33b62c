"""Abuse limits: depth, aliases, tokens, cost, body size, rate, introspection, GET, CORS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import TEST_AUTH, ServedGraph, error_codes
from starlette.testclient import TestClient

from donor_match.services.auth import Role
from entrypoints.asgi import create_app

TIGHT = {
    "max_depth": 2,
    "max_aliases": 2,
    "max_tokens": 200,
    "max_cost": 300,
    "max_body_bytes": 4_000,
    "rate_limit_per_minute": 5,
    "introspection": False,
    "cors_origins": ["https://app.example.org"],
}


@pytest.fixture
def client(served_graph: ServedGraph) -> Iterator[TestClient]:
    # Function-scoped: each test starts with a fresh rate-limit budget.
    settings = served_graph.app_settings.model_copy(update=TIGHT)
    with TestClient(create_app(settings, served_graph.store_settings, TEST_AUTH)) as test_client:
        yield test_client

VALIDATION, PARSE = "GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"


@pytest.mark.parametrize(
    ("query", "code", "fragment"),
    [
        ('{ matches(donorId: "d", first: 1) { nonprofit { region { id } } } }', VALIDATION,
         "depth"),
        ("{ a: causes { id } b: causes { id } c: causes { id } }", VALIDATION, "aliases"),
        ('{ matches(donorId: "d", first: 100) { rank score nonprofit { id } } }', VALIDATION,
         "costs"),
        ("{ causes { " + "id " * 300 + "} }", PARSE, "tokens"),
        ("{ __schema { types { name } } }", VALIDATION, "introspection"),
    ],
)


def test_operations_over_a_limit_are_refused_before_running(
    client: TestClient, query: str, code: str, fragment: str
) -> None:
    body = client.post("/graphql", json={"query": query}).json()
    assert set(error_codes(body)) == {code}, body
    assert fragment in body["errors"][0]["message"].lower()


def test_operations_within_the_limits_run(client: TestClient) -> None:
    body = client.post(
        "/graphql", json={"query": '{ nonprofit(id: "x") { region { id } causes { id } } }'}
    ).json()
    assert error_codes(body) == ["NOT_FOUND"]  # it ran, and found no such nonprofit


def test_large_bodies_get_413_with_a_coded_error(client: TestClient) -> None:
    response = client.post("/graphql", json={"query": "{ causes { id } }", "pad": "x" * 5_000})
    assert response.status_code == 413
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]


def test_each_caller_has_its_own_rate_budget(
    client: TestClient, served_graph: ServedGraph
) -> None:
    query = {"query": "{ causes { id } }"}
    for _ in range(5):
        assert "errors" not in client.post("/graphql", json=query).json()
    assert error_codes(client.post("/graphql", json=query).json()) == ["RATE_LIMITED"]
    # Another principal still has its budget.
    admin = served_graph.token(Role.ADMIN, "ops")
    assert "errors" not in client.post("/graphql", json=query, headers=admin).json()


def test_mutations_are_refused_over_get(client: TestClient, served_graph: ServedGraph) -> None:
    mutation = 'mutation { revokeApiKey(id: "nope") }'
    response = client.get(
        "/graphql", params={"query": mutation}, headers=served_graph.token(Role.ADMIN, "ops")
    )
    assert response.status_code in {400, 405}
    assert "not allowed" in response.text


def test_cors_allows_only_configured_origins(client: TestClient) -> None:
    def preflight(origin: str) -> str | None:
        response = client.options(
            "/graphql",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization"},
        )
        return response.headers.get("access-control-allow-origin")

    assert preflight("https://app.example.org") == "https://app.example.org"
    assert preflight("https://evil.example.com") is None


def test_without_cors_origins_no_origin_is_allowed(served_graph: ServedGraph) -> None:
    # The default: no CORS layer at all, so no browser origin gets an allowing answer.
    assert served_graph.app_settings.cors_origins == []
    app = create_app(served_graph.app_settings, served_graph.store_settings, TEST_AUTH)
    with TestClient(app) as plain:
        preflight = plain.options(
            "/graphql",
            headers={"Origin": "https://app.example.org", "Access-Control-Request-Method": "POST"},
        )
        answer = plain.post(
            "/graphql", json={"query": "{ causes { id } }"},
            headers={"Origin": "https://app.example.org"},
        )
    assert "access-control-allow-origin" not in preflight.headers
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
