"""Model versions through the API: admins promote a registered version (the quality gate holds)."""

from __future__ import annotations

from pathlib import Path

from donor_match.errors import InvalidInputError, NotFoundError
from donor_match.services.auth import Principal, Role, require_principal
from graph_model.registry import Change, GateFailedError, Registry, UnknownVersionError


class ModelService:
    def __init__(self, models_dir: Path, tolerance: float) -> None:
        self._registry = Registry(models_dir, tolerance)

    def promote(self, principal: Principal | None, version: str) -> Change:
        """Serve `version` (every API process follows within seconds).

        A version that fails its quality gate is refused with BAD_USER_INPUT: the request names
        a version that may not be served, retrying will not change that, and it is no server
        fault (so it does not spend the API's error budget). The message gives the gate's reasons.
        """
        require_principal(principal).require(Role.ADMIN)
        try:
            return self._registry.promote(version)
        except UnknownVersionError as exc:
            raise NotFoundError(str(exc)) from exc
        except GateFailedError as exc:
            raise InvalidInputError(str(exc)) from exc
