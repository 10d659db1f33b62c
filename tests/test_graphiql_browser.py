"""GraphiQL in a real browser: headless Chromium types a `matches` query and reads the answer.

The app runs under uvicorn on a loopback port, as `donor-match serve` runs it. Chromium is
Debian's package (`make test` installs it, see tests/browser/install-chromium.sh; Playwright
never downloads a browser here). Every request the page makes outside the app is refused and
reported: GraphiQL has to work from the app alone, without a CDN (graphql_api/graphiql.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser.server import serve
from conftest import TEST_AUTH, ServedGraph
from playwright.sync_api import Page, Route, sync_playwright
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route as StarletteRoute
from starlette.testclient import TestClient

from donor_match.services.auth import Role
from entrypoints.asgi import create_app
from graphql_api.graphiql import ASSET_PREFIX, graphiql


def find_chromium() -> Path:
    """$DONOR_MATCH_CHROMIUM, else Debian's chromium, else a Chrome already there (CI runners)."""
    if configured := os.environ.get("DONOR_MATCH_CHROMIUM"):
        return Path(configured)
    for name in ("chromium", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return Path(found)
    return Path("/usr/bin/chromium")


CHROMIUM = find_chromium()
# Flags that work in this sandbox: root (no sandbox), no GPU, and no network beyond loopback.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 20_000
NO_CHROMIUM = (
    f"no Chromium at {CHROMIUM}: `make test` installs Debian's `chromium` where it runs as root "
    "(or with passwordless sudo) and apt-get works (tests/browser/install-chromium.sh); set "
    "DONOR_MATCH_CHROMIUM to use another binary"
)
WIRING_HINT = (
    "create_app must serve graphql_api.graphiql's page and routes, and `npm ci` must have "
    "installed GraphiQL's assets (package.json)"
)


@pytest.fixture(scope="module")
def live_url(served_graph: ServedGraph) -> Iterator[str]:
    """The app under uvicorn on a free loopback port."""
    with serve(
        create_app(served_graph.app_settings, served_graph.store_settings, TEST_AUTH)
    ) as url:
        yield url


def most_active_donor(served_graph: ServedGraph) -> str:
    counts: dict[str, int] = {}
    for donor_id in served_graph.tables["donations"].column("donor_id").to_pylist():
        counts[donor_id] = counts.get(donor_id, 0) + 1
    return min(counts, key=lambda d: (-counts[d], d))


def editor_text(page: Page, selector: str) -> str:
    """What a person sees in a CodeMirror editor: its rendered lines, read from the DOM."""
    lines = page.locator(f"{selector} .CodeMirror-code pre.CodeMirror-line").all_inner_texts()
    # CodeMirror renders an empty line as a zero-width space, and spaces may come back as nbsp.
    return "\n".join(lines).replace("\u200b", "").replace("\u00a0", " ")


def type_into_editor(page: Page, selector: str, text: str) -> None:
    """Click into a CodeMirror editor, clear it, and type `text` key by key."""
    page.locator(f"{selector} .CodeMirror-scroll").first.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")  # typing `{` over a selection would wrap it in braces instead
    page.keyboard.type(text)
    page.keyboard.press("Escape")  # close any autocomplete popup before the next action
    # GraphiQL auto-closes brackets and quotes while one types: the editor must hold exactly
    # what was typed (read through CodeMirror, as long lines are scrolled out of view).
    typed = page.evaluate(
        "s => document.querySelector(s + ' .CodeMirror').CodeMirror.getValue()", selector
    )
    assert typed == text, f"the editor holds {typed!r}, not what was typed"


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=NO_CHROMIUM)
def test_graphiql_runs_a_matches_query_in_chromium(
    live_url: str, served_graph: ServedGraph, tmp_path: Path
) -> None:
    donor_id = most_active_donor(served_graph)
    auth = served_graph.token(Role.DONOR, donor_id)
    # One line: Enter or Tab would accept GraphiQL's autocomplete suggestions while typing.
    query = (
        f'query {{ matches(donorId: "{donor_id}", first: 5) {{ rank nonprofit {{ id name }} }} }}'
    )
    over_http = httpx.post(f"{live_url}/graphql", json={"query": query}, headers=auth).json()
    assert "errors" not in over_http, over_http
    assert len(over_http["data"]["matches"]) == 5

    outside: list[str] = []  # requests the page tried to send anywhere but the app
    problems: list[str] = []  # page errors and console errors, for failure messages

    def only_the_app(route: Route) -> None:
        if route.request.url.startswith(live_url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        # A persistent context on a new, empty profile directory: no state from earlier runs.
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            context.set_default_timeout(UI_TIMEOUT_MS)
            context.route("**/*", only_the_app)
            page = context.pages[0] if context.pages else context.new_page()
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "console",
                lambda msg: (
                    problems.append(f"console: {msg.text}") if msg.type == "error" else None
                ),
            )
            page.goto(f"{live_url}/graphql", wait_until="load")
            try:
                page.wait_for_selector(".graphiql-query-editor .CodeMirror")
            except Exception as exc:
                page.screenshot(path=tmp_path / "graphiql-failed.png")
                raise AssertionError(
                    f"GraphiQL did not render ({WIRING_HINT}). Requests refused as they were "
                    f"not to the app: {outside}; {problems}; "
                    f"screenshot: {tmp_path / 'graphiql-failed.png'}"
                ) from exc
            assert not outside, f"GraphiQL loads assets from outside the app: {outside}"

            # The Authorization header, typed into GraphiQL's headers editor as a person would.
            page.get_by_role("button", name="Headers").click()
            type_into_editor(
                page, ".graphiql-editor-tool .graphiql-editor:not(.hidden)", json.dumps(auth)
            )
            type_into_editor(page, ".graphiql-query-editor", query)
            page.locator(".graphiql-execute-button").click()

            page.wait_for_function(
                "() => (document.querySelector('.graphiql-response .CodeMirror')"
                "?.CodeMirror.getValue() || '').includes('\"data\"')"
            )
            page.screenshot(path=tmp_path / "graphiql.png")
            shown = editor_text(page, ".graphiql-response")
        finally:
            context.close()

    in_browser: dict[str, Any] = json.loads(shown)
    assert in_browser == over_http, (in_browser, over_http)
    nonprofits = [
        (m["nonprofit"]["id"], m["nonprofit"]["name"]) for m in in_browser["data"]["matches"]
    ]
    assert len({nonprofit_id for nonprofit_id, _ in nonprofits}) == 5
    assert all(name for _, name in nonprofits)
    assert not outside, f"GraphiQL sent requests outside the app: {outside}"
    assert not [p for p in problems if p.startswith("page error")], problems


# The page and its asset routes, without a browser (so they run everywhere).


def ide_client(node_modules: Path | None = None) -> tuple[TestClient, str]:
    ide = graphiql(node_modules)

    async def page(_: Any) -> HTMLResponse:
        return HTMLResponse(ide.html)

    app = Starlette(routes=[StarletteRoute("/graphql", page), *ide.routes()])
    return TestClient(app), ide.html


def test_graphiql_assets_are_served_locally_and_match_their_integrity_hashes() -> None:
    client, html = ide_client()
    assert "unpkg.com" not in html, f"GraphiQL still loads from the CDN: {WIRING_HINT}"
    # Every script and stylesheet comes from the app, and the bytes are the ones Strawberry
    # pinned (what the browser checks against `integrity` before it runs anything).
    tags = re.findall(r'(?:src|href)="(/[^"]+)"\s+integrity="sha384-([^"]+)"', html)
    assert len(tags) == 7, tags
    for url, digest in tags:
        response = client.get(url)
        assert response.status_code == 200, url
        assert base64.b64encode(hashlib.sha384(response.content).digest()).decode() == digest
        assert response.headers["content-type"].startswith(("text/javascript", "text/css"))


@pytest.mark.parametrize(
    "path",
    [
        "@neo4j-cypher/language-support@2.0.0-next.38/package.json",  # installed, not an asset
        "graphiql@3.8.3/package.json",
        "graphiql@3.8.3/../react/package.json",
        "graphiql@3.8.3/%2e%2e/%2e%2e/package.json",
        "react@0.0.1/umd/react.production.min.js",
    ],
)
def test_only_graphiql_assets_are_reachable(path: str) -> None:
    client, _ = ide_client()
    assert client.get(f"{ASSET_PREFIX}/{path}").status_code == 404


def test_without_node_modules_the_stock_cdn_page_is_served(tmp_path: Path) -> None:
    ide = graphiql(tmp_path / "empty")
    assert not ide.offline
    assert ide.routes() == []
    assert "https://unpkg.com/graphiql@" in ide.html
