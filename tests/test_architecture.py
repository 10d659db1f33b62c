"""The import rules between the project's packages, and README's diagram of them, as they stand.

Static (AST) checks only: nothing is imported, so these run in well under a second. Imports
inside functions count as much as top-level ones: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PACKAGES = ("graph_store", "etl", "graph_model", "donor_match", "graphql_api")

# The layers: graphql_api -> donor_match.services -> donor_match.repositories -> graph_store;
# etl -> graph_store; graph_model never imports services or the API.
# Each rule: (importing module prefix, imported module prefixes it must not import).
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("graph_store", ("etl", "graph_model", "donor_match", "graphql_api")),
    ("etl", ("graph_model", "donor_match", "graphql_api")),
    ("graph_model", ("donor_match.services", "donor_match.repositories", "graphql_api")),
    # Services speak domain values: stored data only through the repositories.
    ("donor_match.services", ("graphql_api", "donor_match.cli", "graph_store")),
    ("donor_match.repositories", ("donor_match.services", "graphql_api", "donor_match.cli")),
    # The domain values and match reasons sit below everything that uses them.
    ("donor_match.domain", ("donor_match.services", "donor_match.repositories", "graph_store")),
    ("donor_match.reasons", ("donor_match.services", "donor_match.repositories", "graph_store")),
    ("graphql_api", ("donor_match.cli", "donor_match.repositories", "graph_store")),
    # The CLI, jobs and domain modules sit beside the services in `donor_match`; none but the
    # CLI may reach up into the API.
    ("donor_match", ("graphql_api",)),
]

# Imports a rule's prefix would cover that the layers allow: (importer prefix, imported prefix).
ALLOWED: dict[tuple[str, str], str] = {
    ("donor_match.services", "graph_store.errors"):
        "a service may catch the store's typed errors (a background refresh that failed keeps "
        "the last copy); it never runs a statement",
    ("graphql_api", "graph_store.errors"):
        "the API gives store errors their `extensions.code`",
}

# Imports that break a rule today, each with why it is tolerated: (importer, imported).
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("donor_match.cli", "graphql_api.app"):
        "`serve` (and `demo`, `quickstart` through it) starts the ASGI app: an entry point",
    ("donor_match.cli", "graphql_api.observability"):
        "`serve` sets up the API's JSON logging before starting uvicorn: an entry point",
    ("donor_match.cli", "graphql_api.graphiql"):
        "`demo` and `quickstart` open GraphiQL on their sample query and donor token",
    ("graphql_api.app", "donor_match.repositories.store"):
        "wiring: the app builds the repositories over the stores it opens (issue 21: bootstrap)",
    ("graphql_api.app", "graph_store"):
        "wiring: the app opens the store and the analysts' store, and pings the store for /ready",
    ("graphql_api.observability", "graph_store"):
        "`CountingStore` wraps the store port to count each request's statements",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def project_imports() -> frozenset[tuple[str, str]]:
    """(importing module, imported module) for every import of a project package."""
    found: set[tuple[str, str]] = set()
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            importer = _module_name(path)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        # Relative: resolve against the importer's package.
                        base = importer.split(".")
                        is_package = path.name == "__init__.py"
                        base = base[: len(base) - node.level + (1 if is_package else 0)]
                        names = [".".join([*base, node.module] if node.module else base)]
                    else:
                        names = [node.module or ""]
                else:
                    continue
                found |= {(importer, name) for name in names
                          if name.split(".")[0] in PACKAGES}
    return frozenset(found)


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_scan_sees_the_imports_it_judges() -> None:
    """Guards the scanner itself: a scan that found nothing would pass every rule."""
    imports = project_imports()
    assert ("graphql_api.app", "donor_match.settings") in imports
    assert any(_under(a, "etl") and _under(b, "graph_store") for a, b in imports)
    assert set(EXCEPTIONS) <= imports, "an exception names an import that no longer exists"


def test_imports_follow_the_layer_rules() -> None:
    broken = sorted(
        f"{importer} imports {imported}"
        for importer, imported in project_imports()
        for source, forbidden in RULES
        if _under(importer, source)
        and any(_under(imported, f) for f in forbidden)
        and (importer, imported) not in EXCEPTIONS
        and not any(_under(importer, a) and _under(imported, b) for a, b in ALLOWED)
    )
    assert not broken, (
        "imports against the layer rules (tests/test_architecture.py RULES): " + "; ".join(broken)
    )


# ---------------------------------------------------------------------------------------------
# README's Mermaid diagram: a node per group of modules, an arrow per real dependency.

_NODE = re.compile(r'^\s*(\w+)\s*(?:\[\("?|\["|\("|\[)([^"\]\)]+)')
_EDGE = re.compile(r"^\s*(\w+)\s*(-->|-\.->)\s*(?:\|[^|]*\|\s*)?(\w+)\s*$")


@functools.cache
def _diagram() -> tuple[dict[str, list[str]], set[tuple[str, str]], set[tuple[str, str]]]:
    """README's Mermaid block: node id -> module names or paths (the label's first line),
    import arrows (-->) and other arrows (-.->, e.g. to the Cypher files)."""
    blocks = re.findall(r"```mermaid\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1, "README.md should hold exactly one Mermaid diagram"
    nodes: dict[str, list[str]] = {}
    imports: set[tuple[str, str]] = set()
    others: set[tuple[str, str]] = set()
    for line in blocks[0].splitlines():
        if edge := _EDGE.match(line):
            (imports if edge[2] == "-->" else others).add((edge[1], edge[3]))
        elif node := _NODE.match(line):
            first_line = node[2].split("<br")[0]
            nodes[node[1]] = [name.strip() for name in first_line.split(",")]
    return nodes, imports, others


def _node_of(module: str, nodes: dict[str, list[str]]) -> str | None:
    """The node whose named module is the longest prefix of `module`."""
    best: tuple[int, str] | None = None
    for node, names in nodes.items():
        for name in names:
            if _under(module, name) and (best is None or len(name) > best[0]):
                best = (len(name), node)
    return best[1] if best else None


def test_the_diagram_names_modules_and_files_that_exist() -> None:
    nodes, imports, others = _diagram()
    assert len(nodes) >= 6, f"too few nodes parsed from README's diagram: {nodes}"
    for node, names in nodes.items():
        for name in names:
            if "/" in name:  # a path or glob of files, e.g. neo4j/*.cypher
                assert list(REPO.glob(name)), f"diagram node {node}: no file matches {name}"
                continue
            path = REPO / name.replace(".", "/")
            is_package = path.is_dir() and any(path.rglob("*.py"))
            assert is_package or path.with_suffix(".py").is_file(), (
                f"diagram node {node} names {name}: no such package (directory with Python "
                "files) or module"
            )
    for a, b in imports | others:
        assert a in nodes and b in nodes, f"arrow {a} -> {b} joins an undeclared node"


def test_the_diagram_arrows_are_the_real_imports() -> None:
    """An arrow A --> B exactly where some module of A imports one of B: the picture shows every
    dependency and only those, so a new one (or one taken away) means redrawing it."""
    nodes, drawn, _ = _diagram()
    real: set[tuple[str, str]] = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            module = _module_name(path)
            assert _node_of(module, nodes), f"{module} is in no node of README's diagram"
    for importer, imported in project_imports():
        a, b = _node_of(importer, nodes), _node_of(imported, nodes)
        if a and b and a != b:
            real.add((a, b))
    assert drawn == real, (
        "README's diagram is out of date: "
        f"missing arrows {sorted(real - drawn)}, arrows without an import {sorted(drawn - real)}"
    )
