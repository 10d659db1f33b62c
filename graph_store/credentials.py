"""Passwords the local servers generate once and keep under the data directory (0600 files in a
0700 directory), for a machine where the environment sets none: Neo4j's users and the embedded
FalkorDB's."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def kept(path: Path) -> str:
    """The password kept in `path`, or '' when none has been generated there."""
    return path.read_text().strip() if path.is_file() else ""


def kept_or_generated(path: Path) -> str:
    """The password kept in `path`, generated and written there (0600) on first use."""
    if password := kept(path):
        return password
    password = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        file.write(password)
    return password
