"""A POST of one JSON operation takes the API's short path (graphql_api/http.py), and answers
exactly as Strawberry's generic HTTP handling does for the same request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ServedGraph
from starlette.testclient import TestClient

from donor_match.services.auth import Role
from graphql_api.app import _GraphQLApp

MATCHES = "query M($d: ID!) { matches(donorId: $d, first: 3) { nonprofit { id name } } }"

# Each body once through the short path and once through the generic one.
BODIES: list[Any] = [
    {"query": MATCHES, "variables": {"d": "$DONOR"}, "operationName": "M"},
    {"query": MATCHES, "variables": {"d": "nobody"}},  # NOT_FOUND
    {"query": MATCHES, "variables": {"d": 5.5}},  # a variable of the wrong type
    {"query": MATCHES},  # a required variable missing
    {"query": "{ causes { id name } }", "variables": None, "extensions": {}},
    {"query": "{ causes { id name } }", "operationName": "Other"},  # no such operation
    {"query": "{ causes { nope } }"},  # fails validation
    {"query": "{ causes { id "},  # does not parse
    {"query": "subscription { donationRecorded(nonprofitId: \"x\") { id } }"},
    {"query": 5},  # the generic path names the wrong type
    {"query": "{ causes { id } }", "variables": []},
    {"variables": {}},  # no query
    [{"query": "{ causes { id } }"}],  # a batch
    "a string",
]


@pytest.fixture
def generic_calls(client: TestClient) -> Iterator[list[str]]:
    """The bodies Strawberry's generic `run` served, counted on the app's GraphQL view."""
    view = next(
        route.endpoint for route in client.app.routes  # type: ignore[attr-defined]
        if getattr(route, "path", "") == "/graphql" and isinstance(route.endpoint, _GraphQLApp)
    )
    calls: list[str] = []
    original = view.run

    async def run(request: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(request.method)
        return await original(request, *args, **kwargs)

    view.run = run
    yield calls
    del view.run


def post(client: TestClient, body: Any, headers: dict[str, str], **extra: str) -> Any:
    response = client.post(
        "/graphql", content=json.dumps(body),
        headers={**headers, "content-type": "application/json", **extra},
    )
    return response.status_code, response.json()


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_a_plain_post_answers_as_the_generic_path_does(
    client: TestClient, served_graph: ServedGraph, generic_calls: list[str], body: Any
) -> None:
    headers = served_graph.token(Role.ADMIN, "admin")
    donor = served_graph.tables["donors"].column("id")[0].as_py()
    body = json.loads(json.dumps(body).replace("$DONOR", donor))
    generic = post(client, body, headers, accept="application/json, text/plain")
    assert generic_calls == ["POST"]  # an Accept beyond the plain ones: the generic path
    plain = post(client, body, headers)
    assert plain == generic
    # The short path serves every well-formed JSON operation, and refuses what is not a JSON
    # object as `run` would; it leaves the rest to `run`, which names what is wrong.
    left_to_run = isinstance(body, dict) and not all(
        isinstance(body.get(key), kind)
        for key, kind in (("query", str), ("variables", dict | None))
    )
    assert generic_calls == (["POST", "POST"] if left_to_run else ["POST"])


def test_json_with_a_charset_takes_the_plain_path(
    client: TestClient, served_graph: ServedGraph, generic_calls: list[str]
) -> None:
    headers = served_graph.token(Role.ADMIN, "admin")
    response = client.post(
        "/graphql", content=json.dumps({"query": "{ causes { id } }"}),
        headers={**headers, "content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200 and response.json()["data"]["causes"]
    assert generic_calls == []


def test_response_bodies_with_non_string_keys_are_still_encoded() -> None:
    """Bodies are encoded without orjson's slower non-string-key option first, and with it
    where a value needs it (an analyst's JSON rows may have integer keys)."""
    from graphql_api.app import _json_bytes

    assert _json_bytes({"data": {"rows": [{1: "one", "a": [2.5]}]}}) == (
        b'{"data":{"rows":[{"1":"one","a":[2.5]}]}}'
    )
    assert _json_bytes({"data": {"x": "y"}}) == b'{"data":{"x":"y"}}'
