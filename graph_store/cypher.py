"""The project's Cypher: every statement lives in a `.cypher` file under `neo4j/`.

`neo4j/` is not a Python package (it would shadow the `neo4j` driver), so the wheel ships its
files as `graph_store/cypher/` and a source checkout reads them from `neo4j/` directly.
Adapters accept only `Statement`s loaded from there: Cypher is never assembled from user input,
and a lint test can see every statement the code sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path


def _cypher_root() -> Path:
    packaged = Path(__file__).resolve().parent / "cypher"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "neo4j"


CYPHER_ROOT = _cypher_root()


@dataclass(frozen=True)
class Statement:
    name: str
    text: str


@cache
def statement(name: str) -> Statement:
    """The single statement in `neo4j/<name>.cypher`."""
    statements = script(name)
    if len(statements) != 1:
        raise ValueError(f"neo4j/{name}.cypher holds {len(statements)} statements, expected one")
    return Statement(name, statements[0].text)


@cache
def script(name: str) -> tuple[Statement, ...]:
    """Every statement of `neo4j/<name>.cypher`, in file order (e.g. the schema DDL)."""
    path = CYPHER_ROOT / f"{name}.cypher"
    if not path.is_file():
        raise FileNotFoundError(f"no Cypher file {path}")
    texts = split_cypher_statements(path.read_text(encoding="utf-8"))
    return tuple(Statement(f"{name}#{i}", text) for i, text in enumerate(texts, start=1))


def split_cypher_statements(text: str) -> list[str]:
    """Split a Cypher script on top-level ``;`` and drop ``//`` comments.

    A tiny scanner rather than a regex, so that ``;`` or ``//`` inside string
    literals, backtick-quoted names and ``/* */`` comments are left alone.
    Statements that hold nothing but whitespace/comments are dropped.
    """
    statements: list[str] = []
    current: list[str] = []
    has_code = False  # block comments alone do not make a statement
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"`":
            end = _end_of_quoted(text, i)
            current.append(text[i:end])
            has_code = True
            i = end
        elif text.startswith("//", i):
            # Keep the newline so line numbers inside a statement stay sane.
            newline = text.find("\n", i)
            i = n if newline == -1 else newline
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            end = n if close == -1 else close + 2
            current.append(text[i:end])
            i = end
        elif ch == ";":
            _flush(statements, current, has_code=has_code)
            current, has_code = [], False
            i += 1
        else:
            current.append(ch)
            has_code = has_code or not ch.isspace()
            i += 1
    _flush(statements, current, has_code=has_code)
    return statements


def _end_of_quoted(text: str, start: int) -> int:
    """Index just past the literal/identifier opened at ``start``."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        if text[i] == "\\" and quote != "`":  # backslash escapes only in strings
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    return len(text)  # unterminated: leave it to the linter to complain


def _flush(statements: list[str], current: list[str], *, has_code: bool) -> None:
    statement = "".join(current).strip()
    if has_code and statement:
        statements.append(statement)
