"""Lint Cypher with Neo4j's own front-end via ``tests/cypher_lint.mjs``.

The Node side needs ``node_modules/@neo4j-cypher/language-support``, installed
from the repo's package-lock.json by ``npm ci``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from graph_store.cypher import split_cypher_statements

REPO_ROOT = Path(__file__).resolve().parent.parent
LINT_SCRIPT = REPO_ROOT / "tests" / "cypher_lint.mjs"
LANGUAGE_SUPPORT_DIR = REPO_ROOT / "node_modules" / "@neo4j-cypher" / "language-support"
INSTALL_HINT = "run `npm ci` (make test does this)"
LINT_TIMEOUT_S = 120

Diagnostic = dict[str, Any]


class CypherLintUnavailableError(RuntimeError):
    """Node or the npm package is missing, so nothing could be linted."""


def linter_missing_reason() -> str | None:
    """Why the linter cannot run, or None when it can."""
    if not (LANGUAGE_SUPPORT_DIR / "package.json").is_file():
        return (
            f"{LANGUAGE_SUPPORT_DIR.relative_to(REPO_ROOT)} is missing: {INSTALL_HINT}"
        )
    if shutil.which("node") is None:
        return "`node` is not on PATH; install Node.js >= 20"
    return None


def collect_cypher_statements(root: Path) -> list[tuple[str, str]]:
    """Every statement of every ``*.cypher`` under ``root`` as ``(name, query)``.

    Names are ``relative/path.cypher#N`` with N counting from 1 per file.
    """
    collected: list[tuple[str, str]] = []
    for path in sorted(root.rglob("*.cypher")):
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        for index, statement in enumerate(split_cypher_statements(text), start=1):
            collected.append((f"{rel}#{index}", statement))
    return collected


def lint_statements(statements: list[tuple[str, str]]) -> dict[str, list[Diagnostic]]:
    """Lint ``(name, query)`` pairs in one Node run; map name -> diagnostics.

    Each diagnostic has ``message``, ``severity`` ("error"/"warning"/...),
    ``range``, ``offsets``, ``text`` (the offending slice) and ``deprecated``.
    """
    names = [name for name, _ in statements]
    if len(set(names)) != len(names):
        raise ValueError("statement names must be unique")
    reason = linter_missing_reason()
    if reason is not None:
        raise CypherLintUnavailableError(reason)
    payload = json.dumps([{"name": name, "query": query} for name, query in statements])
    proc = subprocess.run(
        ["node", str(LINT_SCRIPT)],
        input=payload,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=REPO_ROOT,  # so Node resolves the package from this repo's node_modules
        timeout=LINT_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cypher_lint.mjs exited {proc.returncode}:\n{proc.stderr}")
    results = json.loads(proc.stdout)
    by_name = {item["name"]: item["diagnostics"] for item in results}
    if set(by_name) != set(names):
        # A silently dropped statement would read as "clean".
        raise RuntimeError("cypher_lint.mjs did not answer for every statement")
    return by_name


def format_diagnostics(
    diagnostics: dict[str, list[Diagnostic]], queries: dict[str, str] | None = None
) -> str:
    """Human-readable report of every non-empty diagnostic list."""
    lines: list[str] = []
    for name, found in diagnostics.items():
        for diag in found:
            start = diag.get("range", {}).get("start", {})
            line, col = start.get("line", 0) + 1, start.get("character", 0) + 1
            where = f"statement line {line}, col {col}"
            lines.append(f"{name} ({where}) {diag['severity']}: {diag['message']}")
            lines.append(f"    offending text: {diag.get('text')!r}")
        if found and queries is not None and name in queries:
            lines.append(
                "    statement: " + queries[name].replace("\n", "\n               ")
            )
    return "\n".join(lines)
