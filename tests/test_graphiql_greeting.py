"""`make demo` opens GraphiQL on its sample query with the demo donor's token filled in.

Over real HTTP (uvicorn on a loopback port). Serving the page touches no store, so the app points
at a port where nothing listens and these tests need no server of their own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser.server import serve
from conftest import TEST_AUTH, free_port
from starlette.applications import Starlette

from donor_match.services.auth import Role, TokenService
from donor_match.settings import AppSettings
from entrypoints.asgi import create_app
from entrypoints.bootstrap import Settings
from entrypoints.cli import serve as cli_serve
from graph_store import StoreSettings
from graphql_api.graphiql import GraphiQLDefaults

QUERY = cli_serve.SAMPLE_QUERY.format(donor_id="donor-000007")
TOKEN = "header.payload.signature"


def app_without_store(tmp_path: Path, defaults: GraphiQLDefaults | None = None) -> Starlette:
    return create_app(
        AppSettings(DONOR_MATCH_MODELS_DIR=tmp_path / "models"),
        StoreSettings(DONOR_MATCH_STORE="falkordb", DONOR_MATCH_FALKORDB_PORT=free_port()),
        TEST_AUTH,
        graphiql_defaults=defaults,
    )


def graphiql_page(app: Starlette) -> str:
    with serve(app) as url:
        response = httpx.get(f"{url}/graphql", headers={"Accept": "text/html"}, timeout=10)
    assert response.status_code == 200
    assert "GraphiQL" in response.text
    return response.text


def opening(page: str) -> tuple[Any, Any]:
    """The query and headers (JSON text) the page's script opens GraphiQL with."""
    query = re.search(r"parameters\.q \|\| (.+?),?\n", page)
    headers = re.search(r"React\.useState\(parameters\.headers \|\| (.+?)\);?\n", page)
    assert query and headers, "the page's defaults are not where GraphiQL reads them"
    return json.loads(query[1]), json.loads(headers[1])


def test_graphiql_opens_with_the_given_query_and_headers(tmp_path: Path) -> None:
    page = graphiql_page(app_without_store(
        tmp_path, GraphiQLDefaults(QUERY, {"Authorization": f"Bearer {TOKEN}"})
    ))
    query, headers = opening(page)
    assert query == QUERY
    assert json.loads(headers) == {"Authorization": f"Bearer {TOKEN}"}
    assert "unpkg.com" not in page  # still the page with its local assets


def test_without_defaults_the_page_carries_no_query_and_no_token(tmp_path: Path) -> None:
    page = graphiql_page(app_without_store(tmp_path))
    assert "parameters.q || EXAMPLE_QUERY" in page
    assert "React.useState(parameters.headers)" in page
    assert "matches(donorId" not in page
    assert "Bearer" not in page


def test_defaults_cannot_close_the_script(tmp_path: Path) -> None:
    hostile = 'query { x } # </script><script>alert("x")</script>'
    page = graphiql_page(app_without_store(tmp_path, GraphiQLDefaults(hostile)))
    assert "</script><script>alert" not in page
    query, headers = opening(page)
    assert query == hostile
    assert headers is None


def test_demo_serves_graphiql_with_its_donor_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's own wiring: the token `print_try_it` issues reaches the page `serve` builds.
    uvicorn.run is intercepted (the test must not bind the demo's port or block), and so is the
    JSON logging set-up (it would take over the test process's logging)."""
    monkeypatch.setenv("DONOR_MATCH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("DONOR_MATCH_STORE", "falkordb")
    monkeypatch.setenv("DONOR_MATCH_FALKORDB_PORT", str(free_port()))
    monkeypatch.setenv("DONOR_MATCH_JWT_SECRET", TEST_AUTH.jwt_secret.get_secret_value())
    served: list[Starlette] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **_: served.append(app))
    monkeypatch.setattr("entrypoints.asgi.configure_json_logging", lambda: None)

    settings = Settings.load()
    cli_serve.serve_api_process(settings, graphiql_defaults=cli_serve.print_try_it(
        settings, "donor-000007"))

    query, headers = opening(graphiql_page(served[0]))
    assert query == QUERY
    scheme, token = json.loads(headers)["Authorization"].split()
    assert scheme == "Bearer"
    principal = TokenService(TEST_AUTH).verify(token)
    assert (principal.subject, principal.role) == ("donor-000007", Role.DONOR)


def test_the_demo_signing_key_stays_in_its_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a configured JWT secret the demo makes a throwaway one: the API it serves accepts
    the token it prints, and the key never enters os.environ (where child processes and later
    code would inherit it)."""
    import os

    monkeypatch.setenv("DONOR_MATCH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("DONOR_MATCH_STORE", "falkordb")
    monkeypatch.setenv("DONOR_MATCH_FALKORDB_PORT", str(free_port()))
    monkeypatch.delenv("DONOR_MATCH_JWT_SECRET", raising=False)
    monkeypatch.delenv("DONOR_MATCH_JWT_JWKS_URL", raising=False)
    served: list[Starlette] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **_: served.append(app))
    monkeypatch.setattr("entrypoints.asgi.configure_json_logging", lambda: None)

    settings = cli_serve.with_signing_key(Settings.load())
    assert settings.auth.jwt_secret.get_secret_value()
    greeting = cli_serve.print_try_it(settings, "donor-000007")
    cli_serve.serve_api_process(settings, graphiql_defaults=greeting)

    assert "DONOR_MATCH_JWT_SECRET" not in os.environ
    principal = served[0].state.services.auth.authenticate(
        greeting.headers["Authorization"], None
    )
    assert (principal.subject, principal.role) == ("donor-000007", Role.DONOR)
