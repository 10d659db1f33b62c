"""Administration through the API: admins manage integrators' API keys."""

from __future__ import annotations

from donor_match.errors import InvalidInputError
from donor_match.services.auth import (
    ApiKeyService,
    IssuedApiKey,
    Principal,
    Role,
    require_principal,
)

# People authenticate with tokens from the identity provider; keys are for machines.
KEY_ROLES = (Role.INTEGRATOR, Role.ANALYST)


class AdminService:
    def __init__(self, api_keys: ApiKeyService) -> None:
        self._api_keys = api_keys

    def create_api_key(self, principal: Principal | None, subject: str, role: Role) -> IssuedApiKey:
        require_principal(principal).require(Role.ADMIN)
        if role not in KEY_ROLES:
            raise InvalidInputError(f"API keys are for {', '.join(KEY_ROLES)}, not {role}")
        if not subject.strip():
            raise InvalidInputError("subject must not be blank")
        return self._api_keys.create(subject, role)

    def revoke_api_key(self, principal: Principal | None, key_id: str) -> None:
        require_principal(principal).require(Role.ADMIN)
        self._api_keys.revoke(key_id)
