"""GraphiQL without a CDN: Strawberry's own page, its assets served from `node_modules/`.

Strawberry's GraphiQL page loads React, GraphiQL and the explorer plugin from unpkg. Offline
machines (and strict networks) cannot reach it, so the page would stay at "Loading...". The
same files, at the same pinned versions, come from the npm registry through `package.json`
(`npm ci`); this module rewrites the page's unpkg URLs to routes of the app that serve exactly
those files and nothing else from `node_modules/`.

The page's `integrity` (SRI) attributes are kept: the browser refuses any local file that is not
byte-identical to the one Strawberry pinned, so a wrong npm version fails loudly, not subtly.
Where an asset is missing (an image built without `node_modules/`), the stock page is returned
unchanged and GraphiQL loads from the CDN as before.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from strawberry.http.ides import get_graphql_ide_html

log = logging.getLogger(__name__)

ASSET_PREFIX = "/graphiql-assets"
# The repository root's node_modules when the project runs from a checkout (editable install).
DEFAULT_NODE_MODULES = Path(__file__).resolve().parents[1] / "node_modules"
# https://unpkg.com/<package, maybe @scoped>@<version>/<file>
_UNPKG_URL = re.compile(
    r"https://unpkg\.com/(?P<package>(?:@[\w.-]+/)?[\w.-]+)@(?P<version>[\w.+-]+)/(?P<file>[\w./-]+)"
)
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}
# Where Strawberry's page picks its opening query and headers (a shared link's, else none).
_QUERY_DEFAULT = "parameters.q || EXAMPLE_QUERY"
_HEADERS_DEFAULT = "React.useState(parameters.headers)"


@dataclass(frozen=True)
class GraphiQLDefaults:
    """What GraphiQL opens with: `make demo` greets its user with a first query and that donor's
    token. Only for a page served to the one local user it was made for: the headers (a bearer
    token) are in the page's source for anyone who can load it."""

    query: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GraphiQL:
    """The GraphiQL page and the routes serving its assets (none when it uses the CDN)."""

    html: str
    assets: dict[str, Path] = field(default_factory=dict)  # URL path -> file
    offline: bool = False

    def routes(self) -> list[BaseRoute]:
        if not self.assets:
            return []
        return [Route(ASSET_PREFIX + "/{asset:path}", self._serve, methods=["GET", "HEAD"])]

    async def _serve(self, request: Request) -> Response:
        path = self.assets.get(request.url.path)
        if path is None:  # an allow-list: nothing else under node_modules/ is reachable
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(
            path,
            media_type=_MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
            # Versioned URLs never change content, so browsers may keep them for good.
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )


def graphiql(
    node_modules: Path | None = None, defaults: GraphiQLDefaults | None = None
) -> GraphiQL:
    """Strawberry's GraphiQL page, pointed at local copies of its assets where all exist, and
    opening with `defaults` where given (a link's own `?q=` still wins)."""
    node_modules = node_modules or DEFAULT_NODE_MODULES
    html = get_graphql_ide_html("graphiql")
    if defaults is not None:
        html = _with_defaults(html, defaults)
    assets: dict[str, Path] = {}
    for match in _UNPKG_URL.finditer(html):
        package, version, file = match["package"], match["version"], match["file"]
        local = _local_asset(node_modules, package, version, file)
        if local is None:
            log.warning(
                "GraphiQL asset %s@%s/%s is not in %s (run `npm ci`); GraphiQL loads from the CDN",
                package,
                version,
                file,
                node_modules,
            )
            return GraphiQL(html=html)
        assets[f"{ASSET_PREFIX}/{package}@{version}/{file}"] = local
    rewritten = _UNPKG_URL.sub(
        lambda m: f"{ASSET_PREFIX}/{m['package']}@{m['version']}/{m['file']}", html
    )
    return GraphiQL(html=rewritten, assets=assets, offline=True)


def _js(value: object) -> str:
    """A JavaScript literal safe inside a <script> element (no `</script>` can close it)."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")


def _with_defaults(html: str, defaults: GraphiQLDefaults) -> str:
    if _QUERY_DEFAULT not in html or _HEADERS_DEFAULT not in html:
        # Strawberry's page changed (pyproject pins its minor): serve it as it is.
        log.warning("GraphiQL's page has no place for a default query; serving it without")
        return html
    headers = json.dumps(defaults.headers, indent=2) if defaults.headers else None
    html = html.replace(_QUERY_DEFAULT, f"parameters.q || {_js(defaults.query)}")
    return html.replace(
        _HEADERS_DEFAULT, f"React.useState(parameters.headers || {_js(headers)})"
    )


def _local_asset(node_modules: Path, package: str, version: str, file: str) -> Path | None:
    root = node_modules / package
    try:
        installed = json.loads((root / "package.json").read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None
    path = (root / file).resolve()
    # Same version as pinned (SRI would refuse another), and no escaping the package folder.
    if installed != version or not path.is_file() or root.resolve() not in path.parents:
        return None
    return path
