"""What ships: the wheel carries the Cypher files, and no Python code builds Cypher text."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = [
    "graph_store", "etl", "graph_model", "mlops", "graphql_api", "donor_match", "entrypoints",
]
CYPHER_CLAUSE = re.compile(
    r"\b(MATCH|MERGE|CREATE)\s*\(|\bUNWIND\s+\$|\bCREATE\s+(INDEX|CONSTRAINT)\b|\bCALL\s+db\."
)
# The FalkorDB adapter translates neo4j/schema.cypher DDL into FalkorDB's own index syntax,
# from identifiers of that file only (never user input).
DIALECT_TRANSLATION = REPO / "graph_store" / "falkordb_store.py"


def test_wheel_ships_every_cypher_file_and_no_neo4j_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("donor_match-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"graph_store/cypher/{p.relative_to(REPO / 'neo4j').as_posix()}"
        for p in (REPO / "neo4j").rglob("*.cypher")
    }
    assert expected
    assert expected <= names
    # A top-level `neo4j` package would shadow the official driver.
    assert not any(name.startswith("neo4j/") for name in names)
    assert not (REPO / "neo4j" / "__init__.py").exists()


def _string_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in docstrings:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            text = "".join(
                part.value if isinstance(part, ast.Constant) else "{}" for part in node.values
            )
            found.append((node.lineno, text))
    return found


def test_no_python_module_holds_cypher_text() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {text!r}"
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
        if path != DIALECT_TRANSLATION
        for line, text in _string_literals(path)
        if CYPHER_CLAUSE.search(text)
    ]
    assert not offenders, "Cypher belongs in neo4j/*.cypher:\n" + "\n".join(offenders)
