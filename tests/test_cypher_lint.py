"""Every Cypher statement under neo4j/ must pass Neo4j's own linter cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
from cypher_lint import (
    INSTALL_HINT,
    LANGUAGE_SUPPORT_DIR,
    REPO_ROOT,
    collect_cypher_statements,
    format_diagnostics,
    lint_statements,
    linter_missing_reason,
    split_cypher_statements,
)

CYPHER_ROOT = REPO_ROOT / "neo4j"


def _require_linter() -> None:
    # Fail, not skip: a skipped lint would let broken Cypher through CI.
    if not (LANGUAGE_SUPPORT_DIR / "package.json").is_file():
        pytest.fail(INSTALL_HINT)
    reason = linter_missing_reason()
    if reason is not None:
        pytest.fail(reason)


def test_project_cypher_has_no_diagnostics() -> None:
    _require_linter()
    statements = collect_cypher_statements(CYPHER_ROOT)
    assert statements, f"no Cypher statements found in {CYPHER_ROOT}/**/*.cypher"

    diagnostics = lint_statements(statements)

    dirty = {name: found for name, found in diagnostics.items() if found}
    assert not dirty, (
        f"{sum(map(len, dirty.values()))} Cypher diagnostic(s) in "
        f"{len(dirty)} of {len(statements)} statement(s):\n"
        + format_diagnostics(dirty, dict(statements))
    )


def test_linter_catches_errors_and_accepts_parameters() -> None:
    _require_linter()
    bad = {
        "syntax": "MATCH (n:Donor RETURN n",
        "undefined-variable": "MATCH (d:Donor) RETURN n",
        "unknown-function": "MATCH (d:Donor) RETURN coalesc(d.name, 'x') AS name",
        "wrong-arity": "RETURN toInteger('1', 2) AS x",
        "neo4j4-constraint": "CREATE CONSTRAINT ON (d:Donor) ASSERT d.id IS UNIQUE",
        "deprecated-id": "MATCH (d:Donor) RETURN id(d) AS i",
    }
    # Parameters and unknown labels must not be reported: the former come from
    # the application, the latter from the very files being linted.
    good = {
        "params": "MATCH (d:Donor {id: $donor_id})-[:DONATED]->(n:Nonprofit) "
        "RETURN DISTINCT n.id AS id LIMIT $`max rows`",
        "ddl": "CREATE CONSTRAINT donor_id IF NOT EXISTS "
        "FOR (d:Donor) REQUIRE d.id IS UNIQUE",
    }

    result = lint_statements(list(bad.items()) + list(good.items()))

    assert result["syntax"][0]["text"] == "RETURN"
    assert any("not defined" in d["message"] for d in result["undefined-variable"])
    assert any("coalesc" in d["message"] for d in result["unknown-function"])
    for name in bad:
        assert any(d["severity"] in {"error", "warning"} for d in result[name]), name
    assert any(d["severity"] == "warning" for d in result["deprecated-id"])
    for name in good:
        assert result[name] == [], format_diagnostics({name: result[name]})


def test_split_ignores_semicolons_in_literals_and_comments() -> None:
    script = """
// header comment; not a statement
CREATE CONSTRAINT a IF NOT EXISTS FOR (d:Donor) REQUIRE d.id IS UNIQUE;

MATCH (d:Donor) // trailing comment; still the same statement
WHERE d.name = 'a;b' AND d.`odd;name` = "c\\";d"
RETURN d /* block; comment */;
;
// only a comment
"""
    statements = split_cypher_statements(script)

    assert len(statements) == 2
    assert statements[0].startswith("CREATE CONSTRAINT a")
    assert "'a;b'" in statements[1]
    assert "`odd;name`" in statements[1]
    assert '"c\\";d"' in statements[1]
    assert "//" not in statements[1]
    assert statements[1].endswith("/* block; comment */")


def test_collect_names_statements_by_relative_path(tmp_path: Path) -> None:
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "constraints.cypher").write_text(
        "RETURN 1 AS a;\nRETURN 2 AS b;\n", encoding="utf-8"
    )
    (tmp_path / "empty.cypher").write_text("// nothing here\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("RETURN 3;", encoding="utf-8")

    assert collect_cypher_statements(tmp_path) == [
        ("schema/constraints.cypher#1", "RETURN 1 AS a"),
        ("schema/constraints.cypher#2", "RETURN 2 AS b"),
    ]
