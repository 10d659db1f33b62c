"""What an analyst's Cypher may do, decided on its tokens as Cypher's own lexer reads them.

The keyword filter this replaces ran regular expressions over the text, so comments and
backticks inside strings hid clauses from it (``CALL/**/db…``, ``CALL `dbms.procedures`()``).
Here one left-to-right scan splits the text into the tokens the server sees: strings (with
backslash escapes), backtick-quoted names (with doubled backticks), comments (dropped, as
whitespace), numbers, parameters, words and symbols. A clause keyword is only ever an unquoted
word, and a procedure's name is read after CALL whether quoted, dotted or both.

Why not a full parser: no maintained Python parser covers Neo4j 5's read grammar (graphglot
0.14 refuses ``COUNT { }`` subqueries and takes 5-70 ms a query; libcypher-parser and
antlr4-cypher stop at openCypher 9), and Neo4j's own front-end (the one tests/cypher_lint.mjs
runs) would put Node.js and a worker process into every API process. This check is an early,
clear refusal; the fences that cannot be talked past are the store's read-only path and the
analyst server's own configuration. Syntax errors are left to the store, which names them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Clauses that write, change schema or data sources, switch databases or administer the server.
FORBIDDEN_WORDS = frozenset({
    "CREATE", "MERGE", "DELETE", "DETACH", "SET", "REMOVE", "DROP", "LOAD", "FOREACH", "USE",
    "GRANT", "DENY", "REVOKE", "ALTER", "RENAME", "SHOW", "TERMINATE", "START", "STOP",
    "ENABLE", "DISABLE", "TRANSACTIONS", "INSERT", "FINISH",
})
# Procedures analysts may call: schema discovery only.
ALLOWED_PROCEDURES = frozenset({"db.labels", "db.relationshiptypes", "db.propertykeys"})


class CypherSyntaxError(ValueError):
    """The text cannot be split into Cypher tokens (an unterminated string, name or comment)."""


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "name" (backtick-quoted), "string", "number", "param", "symbol"
    text: str  # a name's or string's value; a word as written
    at: int  # offset in the query, for messages


def tokens(cypher: str) -> list[Token]:
    """The query's tokens; comments and whitespace are dropped."""
    found: list[Token] = []
    i, n = 0, len(cypher)
    while i < n:
        ch = cypher[i]
        if ch.isspace():
            i += 1
        elif cypher.startswith("//", i):
            newline = cypher.find("\n", i)
            i = n if newline == -1 else newline + 1
        elif cypher.startswith("/*", i):
            close = cypher.find("*/", i + 2)
            if close == -1:
                raise CypherSyntaxError(f"comment opened at offset {i} is never closed")
            i = close + 2
        elif ch in "'\"":
            value, end = _string(cypher, i)
            found.append(Token("string", value, i))
            i = end
        elif ch == "`":
            value, end = _quoted_name(cypher, i)
            found.append(Token("name", value, i))
            i = end
        elif ch == "$":
            start = i
            i += 1
            if i < n and cypher[i] == "`":
                value, i = _quoted_name(cypher, i)
            else:
                end = _word_end(cypher, i)
                value, i = cypher[i:end], end
            found.append(Token("param", value, start))
        elif _word_char(ch) and not ch.isdigit():
            end = _word_end(cypher, i)
            found.append(Token("word", cypher[i:end], i))
            i = end
        elif ch.isdigit():
            end = _word_end(cypher, i)
            found.append(Token("number", cypher[i:end], i))
            i = end
        else:
            found.append(Token("symbol", ch, i))
            i += 1
    return found


def refusal(cypher: str) -> str | None:
    """Why `cypher` may not run on the analyst path, or None."""
    try:
        toks = tokens(cypher)
    except CypherSyntaxError as exc:
        return f"cannot read the query: {exc}"
    forbidden: set[str] = set()
    for index, token in enumerate(toks):
        before = toks[index - 1] if index else None
        if before is not None and before.kind == "symbol" and before.text == ".":
            continue  # a property key such as `n.set`, never a clause
        if token.kind == "symbol" and token.text == ";" and index + 1 < len(toks):
            return "one statement at a time: nothing may follow `;`"
        if token.kind != "word":
            continue
        word = token.text.upper()
        if word in FORBIDDEN_WORDS:
            forbidden.add(word)
        elif word == "CALL" and (reason := _call_refusal(toks, index + 1)):
            return reason
    if forbidden:
        return f"read-only queries only: {', '.join(sorted(forbidden))} is not allowed"
    return None


def _call_refusal(toks: list[Token], start: int) -> str | None:
    """CALL followed by a procedure name (words and quoted names joined by dots) that is on the
    allow-list; subqueries (`CALL {`, `CALL (x) {`) are refused."""
    parts: list[str] = []
    i = start
    while i < len(toks) and toks[i].kind in {"word", "name"}:
        parts.append(toks[i].text)
        if i + 1 < len(toks) and toks[i + 1].kind == "symbol" and toks[i + 1].text == ".":
            i += 2
            continue
        break
    if not parts:
        return "CALL subqueries are not allowed"
    procedure = ".".join(parts)
    if procedure.lower() not in ALLOWED_PROCEDURES:
        return f"procedure {procedure} is not allowed"
    return None


def _string(text: str, start: int) -> tuple[str, int]:
    quote, i, value = text[start], start + 1, []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            value.append(text[i : i + 2])
            i += 2
        elif ch == quote:
            return "".join(value), i + 1
        else:
            value.append(ch)
            i += 1
    raise CypherSyntaxError(f"string opened at offset {start} is never closed")


def _quoted_name(text: str, start: int) -> tuple[str, int]:
    i, value = start + 1, []
    while i < len(text):
        if text[i] == "`":
            if text.startswith("``", i):  # a doubled backtick is one backtick in the name
                value.append("`")
                i += 2
                continue
            return "".join(value), i + 1
        value.append(text[i])
        i += 1
    raise CypherSyntaxError(f"name quoted at offset {start} is never closed")


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _word_end(text: str, start: int) -> int:
    i = start
    while i < len(text) and _word_char(text[i]):
        i += 1
    return i
