"""Authentication (JWT, API keys) and the authorization matrix: every guarded operation by role."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from conftest import TEST_AUTH, ServedGraph, error_codes, free_port, graphql
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from starlette.testclient import TestClient

from donor_match.services.auth import Role, TokenService, UnauthenticatedError
from donor_match.services.matching import match_id
from donor_match.settings import AuthSettings
from graph_model.artifacts import current_artifact_dir

# The API end to end on the production store as well as on the embedded one.
pytestmark = pytest.mark.backends("falkordb", "neo4j")

DONOR, OTHER_DONOR = "donor-000001", "donor-000002"
NONPROFIT, OTHER_NONPROFIT = "nonprofit-00001", "nonprofit-00002"

# Who calls: (name, role, subject); None is an anonymous caller.
CALLERS: dict[str, tuple[Role, str] | None] = {
    "anonymous": None,
    "donor-self": (Role.DONOR, DONOR),
    "donor-other": (Role.DONOR, OTHER_DONOR),
    "nonprofit-self": (Role.NONPROFIT, NONPROFIT),
    "nonprofit-other": (Role.NONPROFIT, OTHER_NONPROFIT),
    "analyst": (Role.ANALYST, "ana"),
    "integrator": (Role.INTEGRATOR, "platform"),
    "admin": (Role.ADMIN, "ops"),
}

# Guarded operations and the callers allowed to run them.
OPERATIONS: dict[str, tuple[str, set[str]]] = {
    "donor profile (private fields)": (
        f'{{ donor(id: "{DONOR}") {{ id name region {{ id }} causes {{ id }} }} }}',
        {"donor-self", "admin"},
    ),
    "matches": (
        f'{{ matches(donorId: "{DONOR}", first: 3) {{ rank }} }}',
        {"donor-self", "admin"},
    ),
    "recordDonation": (
        f'mutation {{ recordDonation(input: {{donorId: "{DONOR}", nonprofitId: "{NONPROFIT}", '
        f"amount: 5}}) {{ id }} }}",
        {"donor-self", "integrator", "admin"},
    ),
    "createApiKey": (
        'mutation { createApiKey(subject: "p", role: INTEGRATOR) { id key } }',
        {"admin"},
    ),
    "revokeApiKey": ('mutation { revokeApiKey(id: "{key_id}") }', {"admin"}),
    # Both write back the profile the graph already holds, so other tests see no change.
    "updateDonorPreferences": (
        f'mutation {{ updateDonorPreferences(donorId: "{DONOR}", '
        "input: {causeIds: {donor_causes}}) { id } }",
        {"donor-self", "admin"},
    ),
    "upsertNonprofit": ("mutation { upsertNonprofit(input: {nonprofit_profile}) { id } }",
                        {"nonprofit-self", "admin"}),
    "matchFeedback": ('mutation { matchFeedback(matchId: "{match_id}", action: CLICKED) }',
                      {"donor-self", "admin"}),
    # Promotes the version already served, so other tests see no change.
    "promoteModel": ('mutation { promoteModel(version: "{version}") { changed } }', {"admin"}),
    # Writes back the need as loaded (none), and the same initiative each time.
    "setFundingNeed": (f'mutation {{ setFundingNeed(nonprofitId: "{NONPROFIT}", '
                       "fundingNeed: null) { id } }",
                       {"nonprofit-self", "admin"}),
    "upsertInitiative": (f'mutation {{ upsertInitiative(input: {{id: "authz-{NONPROFIT}", '
                         f'nonprofitId: "{NONPROFIT}", title: "Authz", causeIds: '
                         "{nonprofit_causes}}) { id } }",
                         {"nonprofit-self", "admin"}),
    "deleteInitiative": ('mutation { deleteInitiative(id: "{initiative_id}") }',
                         {"nonprofit-self", "admin"}),
}
PUBLIC = [f'{{ nonprofit(id: "{NONPROFIT}") {{ name causes {{ id }} }} }}', "{ causes { id } }"]


def headers_for(served_graph: ServedGraph, caller: str) -> dict[str, str]:
    who = CALLERS[caller]
    return served_graph.token(*who) if who else {}


def causes_of(served_graph: ServedGraph, kind: str, owner: str) -> list[str]:
    rows = served_graph.tables[f"{kind}_causes"].to_pylist()
    return sorted(row["cause_id"] for row in rows if row[f"{kind}_id"] == owner)


def nonprofit_profile(served_graph: ServedGraph) -> str:
    """NONPROFIT's profile exactly as loaded, as a GraphQL input literal."""
    (row,) = [n for n in served_graph.tables["nonprofits"].to_pylist() if n["id"] == NONPROFIT]
    causes = json.dumps(causes_of(served_graph, "nonprofit", NONPROFIT))
    return (f'{{id: "{NONPROFIT}", name: "{row["name"]}", regionId: "{row["region_id"]}", '
            f"causeIds: {causes}}}")


def new_key(client: TestClient, served_graph: ServedGraph, role: str = "INTEGRATOR") -> dict:
    body = graphql(
        client,
        f'mutation {{ createApiKey(subject: "platform", role: {role}) {{ id key }} }}',
        headers_for(served_graph, "admin"),
    )
    return body["data"]["createApiKey"]


def new_initiative(client: TestClient, served_graph: ServedGraph) -> str:
    """A fresh initiative of NONPROFIT, for a test that deletes one."""
    cause = causes_of(served_graph, "nonprofit", NONPROFIT)[0]
    body = graphql(
        client,
        f'mutation {{ upsertInitiative(input: {{nonprofitId: "{NONPROFIT}", title: "Doomed", '
        f'causeIds: ["{cause}"]}}) {{ id }} }}',
        headers_for(served_graph, "admin"),
    )
    return body["data"]["upsertInitiative"]["id"]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_authorization_matrix(
    client: TestClient, served_graph: ServedGraph, operation: str, caller: str
) -> None:
    query, allowed = OPERATIONS[operation]
    if "{key_id}" in query:
        query = query.replace("{key_id}", new_key(client, served_graph)["id"])
    if "{initiative_id}" in query:
        query = query.replace("{initiative_id}", new_initiative(client, served_graph))
    query = (
        query.replace("{donor_causes}", json.dumps(causes_of(served_graph, "donor", DONOR)))
        .replace("{nonprofit_causes}", json.dumps(causes_of(served_graph, "nonprofit", NONPROFIT)))
        .replace("{nonprofit_profile}", nonprofit_profile(served_graph))
        .replace("{match_id}", match_id(DONOR, NONPROFIT))
        .replace("{version}", current_artifact_dir(served_graph.app_settings.models_dir).name)
    )
    body = graphql(client, query, headers_for(served_graph, caller))
    codes = error_codes(body)
    if caller in allowed:
        assert not codes, body
    elif CALLERS[caller] is None:
        assert codes == ["UNAUTHENTICATED"], body
    else:
        assert codes == ["FORBIDDEN"], body


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("query", PUBLIC)
def test_public_catalog_is_open_to_everyone(
    client: TestClient, served_graph: ServedGraph, query: str, caller: str
) -> None:
    assert "errors" not in graphql(client, query, headers_for(served_graph, caller))


@pytest.mark.parametrize("caller", CALLERS)
def test_donation_feed_is_for_the_nonprofit_integrators_and_admins(
    client: TestClient, served_graph: ServedGraph, caller: str
) -> None:
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": headers_for(served_graph, caller)})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "1", "type": "subscribe", "payload": {
            "query": f'subscription {{ donationRecorded(nonprofitId: "{NONPROFIT}") {{ id }} }}'
        }})
        if caller in {"nonprofit-self", "integrator", "admin"}:
            ws.send_json({"type": "ping"})  # no error: the subscription is live
            assert ws.receive_json()["type"] == "pong"
        else:
            message = ws.receive_json()
            assert message["type"] == "next", message
            expected = "UNAUTHENTICATED" if CALLERS[caller] is None else "FORBIDDEN"
            assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == [expected]


def test_api_keys_authenticate_until_revoked(
    client: TestClient, served_graph: ServedGraph
) -> None:
    issued = new_key(client, served_graph)
    record = OPERATIONS["recordDonation"][0]
    assert "errors" not in graphql(client, record, {"X-API-Key": issued["key"]})
    graphql(client, f'mutation {{ revokeApiKey(id: "{issued["id"]}") }}',
         headers_for(served_graph, "admin"))
    for key in (issued["key"], issued["key"] + "x", "dm_nope_nope", "garbage"):
        body = graphql(client, record, {"X-API-Key": key})
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


def test_api_keys_are_not_for_people(client: TestClient, served_graph: ServedGraph) -> None:
    body = graphql(client, 'mutation { createApiKey(subject: "x", role: ADMIN) { id } }',
                headers_for(served_graph, "admin"))
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": DONOR, "role": "donor", "iss": TEST_AUTH.issuer, "aud": TEST_AUTH.audience,
              "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


SECRET = TEST_AUTH.jwt_secret.get_secret_value()
BAD_TOKENS = {
    "alg none": _unsigned(_claims()),
    "expired": jwt.encode(_claims(exp=int(time.time()) - 3600), SECRET, "HS256"),
    "wrong audience": jwt.encode(_claims(aud="someone-else"), SECRET, "HS256"),
    "wrong issuer": jwt.encode(_claims(iss="evil"), SECRET, "HS256"),
    "tampered": jwt.encode(_claims(), SECRET, "HS256")[:-3] + "abc",
    "other key": jwt.encode(_claims(), "another-secret-of-enough-length-123456", "HS256"),
    "unknown role": jwt.encode(_claims(role="root"), SECRET, "HS256"),
    "no expiry": jwt.encode(_claims(exp=None), SECRET, "HS256"),
}


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_bad_tokens_are_unauthenticated(client: TestClient, kind: str) -> None:
    with pytest.raises(UnauthenticatedError):
        TokenService(TEST_AUTH).verify(BAD_TOKENS[kind])
    bearer = {"Authorization": f"Bearer {BAD_TOKENS[kind]}"}
    body = graphql(client, OPERATIONS["matches"][0], bearer)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


def test_a_verified_token_is_refused_once_it_expires() -> None:
    """Verified tokens are remembered (checking a signature per request cost more than the rest
    of authentication), but never past their expiry."""
    tokens = TokenService(TEST_AUTH.model_copy(update={"leeway_s": 0}))
    expires = int(time.time()) + 2
    token = jwt.encode(_claims(exp=expires), SECRET, "HS256")
    assert tokens.verify(token).subject == DONOR
    assert tokens.verify(token).subject == DONOR
    time.sleep(max(0.0, expires - time.time()) + 0.1)
    with pytest.raises(UnauthenticatedError):
        tokens.verify(token)


def test_rs256_tokens_verify_against_a_jwks() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(jwks)

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = AuthSettings(jwks_url=f"http://127.0.0.1:{server.server_port}/jwks")
        token = jwt.encode(_claims(), key, "RS256", headers={"kid": "k1"})
        principal = TokenService(settings).verify(token)
        assert (principal.subject, principal.role) == (DONOR, Role.DONOR)
        # An HS256 token signed with the public key must not pass as RS256 (key confusion).
        with pytest.raises(UnauthenticatedError):
            TokenService(settings).verify(_unsigned(_claims()))
    finally:
        server.shutdown()


def test_short_secrets_are_refused() -> None:
    weak = AuthSettings(jwt_secret=SecretStr("short"))
    with pytest.raises(UnauthenticatedError, match="DONOR_MATCH_JWT_SECRET"):
        TokenService(weak).issue(DONOR, Role.DONOR)
