"""Who is calling: JWT bearer tokens for people, hashed API keys for integrating platforms."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

import jwt
from cachetools import TTLCache

from donor_match.errors import DomainError, NotFoundError
from donor_match.repositories.ports import ApiKeyRepository
from donor_match.settings import AuthSettings

API_KEY_PREFIX = "dm"


class Role(StrEnum):
    DONOR = "donor"
    NONPROFIT = "nonprofit"
    ANALYST = "analyst"
    ADMIN = "admin"
    INTEGRATOR = "integrator"


class UnauthenticatedError(DomainError):
    code = "UNAUTHENTICATED"


class ForbiddenError(DomainError):
    code = "FORBIDDEN"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a donor or nonprofit acts for the id in `subject`."""

    subject: str
    role: Role

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = ", ".join(sorted(roles))
            raise ForbiddenError(f"role {self.role} may not do this (allowed: {allowed})")

    def require_self_or(self, subject: str, role: Role, *others: Role) -> None:
        """Allow `role` only for its own `subject`, and any of `others` for everyone."""
        if self.role in others:
            return
        if self.role is role and self.subject == subject:
            return
        raise ForbiddenError(f"{self.role} {self.subject!r} may not act for {subject!r}")


def require_principal(principal: Principal | None) -> Principal:
    if principal is None:
        raise UnauthenticatedError("authentication required: send a bearer token or an API key")
    return principal


class TokenService:
    """Verifies JWTs (HS256 with a shared secret, or RS256 keys from a JWKS URL)."""

    # Clients send one token with many requests: its verified caller is kept until it expires
    # (at most this long), since checking a signature cost more than the rest of authentication.
    VERIFIED_TTL_S = 60

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwks_url, timeout=5) if settings.jwks_url else None
        self._verified: TTLCache[str, tuple[Principal, float]] = TTLCache(
            maxsize=10_000, ttl=self.VERIFIED_TTL_S
        )
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        with self._lock:
            known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            return known[0]
        principal, expires = self._verify(token)
        with self._lock:
            self._verified[token] = (principal, expires)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        """The caller and when the token stops being valid (its expiry plus the leeway)."""
        try:
            if self._jwks is not None:
                key: object = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = ["RS256"]
            else:
                key, algorithms = self._secret(), ["HS256"]
            # `algorithms` pins what we accept: alg=none or an HS/RS swap is rejected.
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=algorithms,
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                leeway=self._settings.leeway_s,
            )
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError(f"invalid token: {exc}") from exc
        try:
            role = Role(claims.get("role", ""))
        except ValueError as exc:
            unknown = claims.get("role")
            raise UnauthenticatedError(f"invalid token: unknown role {unknown!r}") from exc
        return Principal(str(claims["sub"]), role), float(claims["exp"]) + self._settings.leeway_s

    @property
    def may_block(self) -> bool:
        """Whether verifying may wait on the network: a JWKS fetches keys it has not seen."""
        return self._jwks is not None

    def issue(self, subject: str, role: Role, ttl_s: int = 3600) -> str:
        """A local HS256 token (for development and tests; production uses its IdP)."""
        now = int(time.time())
        claims = {
            "sub": subject,
            "role": str(role),
            "iss": self._settings.issuer,
            "aud": self._settings.audience,
            "iat": now,
            "exp": now + ttl_s,
        }
        return jwt.encode(claims, self._secret(), algorithm="HS256")

    def _secret(self) -> str:
        secret = self._settings.jwt_secret.get_secret_value()
        if len(secret) < 32:
            raise UnauthenticatedError(
                "token authentication is not configured: set DONOR_MATCH_JWT_SECRET "
                "(32+ characters) or DONOR_MATCH_JWT_JWKS_URL"
            )
        return secret


@dataclass(frozen=True)
class IssuedApiKey:
    id: str
    key: str  # shown once; only its hash is stored


class ApiKeyService:
    """API keys `dm_<id>_<secret>`; the graph keeps the SHA-256 of the secret, never the key.

    The secret is 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    """

    def __init__(self, repository: ApiKeyRepository) -> None:
        self._repository = repository

    def create(self, subject: str, role: Role = Role.INTEGRATOR) -> IssuedApiKey:
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        self._repository.create(key_id, _digest(secret), subject, str(role), int(time.time()))
        return IssuedApiKey(key_id, f"{API_KEY_PREFIX}_{key_id}_{secret}")

    def revoke(self, key_id: str) -> None:
        if not self._repository.revoke(key_id, int(time.time())):
            raise NotFoundError(f"API key {key_id!r} not found")

    def verify(self, key: str) -> Principal:
        prefix, _, rest = key.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != API_KEY_PREFIX or not key_id or not secret:
            raise UnauthenticatedError("malformed API key")
        stored = self._repository.get(key_id)
        if stored is None or stored.revoked_at is not None:
            raise UnauthenticatedError("unknown or revoked API key")
        if not hmac.compare_digest(stored.digest, _digest(secret)):
            raise UnauthenticatedError("unknown or revoked API key")
        return Principal(stored.subject, Role(stored.role))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AuthService:
    """Turns request credentials into a `Principal` (or None for anonymous callers)."""

    def __init__(self, tokens: TokenService, api_keys: ApiKeyService) -> None:
        self.tokens = tokens
        self.api_keys = api_keys

    def may_block(self, authorization: str | None, api_key: str | None) -> bool:
        """Whether `authenticate` may wait on I/O for these credentials (an API key is read
        from the store); otherwise it is a short computation an event loop can run itself."""
        return bool(api_key) or (bool(authorization) and self.tokens.may_block)

    def authenticate(self, authorization: str | None, api_key: str | None) -> Principal | None:
        if api_key:
            return self.api_keys.verify(api_key)
        if not authorization:
            return None
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return self.tokens.verify(credentials.strip())
        raise UnauthenticatedError("Authorization must be `Bearer <token>`")
