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
PACKAGES = ("graph_store", "etl", "graph_model", "mlops", "donor_match", "graphql_api",
            "entrypoints")

# The layers, from the top: entrypoints -> graphql_api -> donor_match.services ->
# donor_match.repositories -> graph_store; etl -> graph_store; the model side (graph_model, and its
# batch jobs in mlops) never reaches the services or the API.
# Each rule: (importing module prefix, imported module prefixes it must not import).
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("graph_store", ("etl", "graph_model", "mlops", "donor_match", "graphql_api", "entrypoints")),
    ("etl", ("graph_model", "mlops", "donor_match", "graphql_api", "entrypoints")),
    ("graph_model", ("mlops", "donor_match.services", "donor_match.repositories", "graphql_api",
                     "entrypoints")),
    ("mlops", ("donor_match.services", "graphql_api", "entrypoints")),
    # Services speak domain values: stored data only through the repositories.
    ("donor_match.services", ("graph_store",)),
    ("donor_match.repositories", ("donor_match.services",)),
    # The domain values and match reasons sit below everything that uses them.
    ("donor_match.domain", ("donor_match.services", "donor_match.repositories", "graph_store")),
    ("donor_match.reasons", ("donor_match.services", "donor_match.repositories", "graph_store")),
    ("donor_match", ("mlops", "graphql_api", "entrypoints")),
    ("graphql_api", ("mlops", "entrypoints", "donor_match.repositories", "graph_store")),
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
    ("graphql_api.app", "graph_store"):
        "the app pings the store it is given for /readyz and maps its errors",
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
    assert ("entrypoints.asgi", "graphql_api.app") in imports
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


# ---------------------------------------------------------------------------------------------
# The ways in: commands translate arguments; settings travel as objects.

CLI = REPO / "entrypoints" / "cli"


def _command_names() -> set[str]:
    """Functions registered as CLI commands: decorated `@x.command(...)`, or registered in
    entrypoints/cli/__init__.py as `app.command()(module.function)`."""
    names: set[str] = set()
    for path in CLI.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
                and d.func.attr == "command" for d in node.decorator_list
            ):
                names.add(node.name)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Call)
                  and isinstance(node.func.func, ast.Attribute)
                  and node.func.func.attr == "command"):
                names |= {a.attr if isinstance(a, ast.Attribute) else getattr(a, "id", "")
                          for a in node.args}
    return names


def test_no_command_calls_another_command() -> None:
    commands = _command_names()
    assert {"store_start", "etl_anonymize", "model_promote", "train", "serve", "demo"} <= commands
    calls = sorted(
        f"{path.relative_to(REPO)}:{node.lineno} calls {name}"
        for path in CLI.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call)
        and (name := getattr(node.func, "id", None) or getattr(node.func, "attr", None))
        in commands
    )
    assert not calls, "share a plain function instead: " + "; ".join(calls)


# Writes to os.environ that are allowed, each with why: (module, variable).
ENVIRON_WRITES = {
    ("graph_model", "TF_USE_LEGACY_KERAS"): "TF-GNN needs Keras 2, chosen before TensorFlow loads",
}


def test_nothing_rewrites_the_environment() -> None:
    """Settings are passed as objects; a child process gets its environment explicitly."""
    writes = set()
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                target = None
                if isinstance(node, ast.Assign | ast.AugAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    target = next((t for t in targets if isinstance(t, ast.Subscript)
                                   and ast.unparse(t.value) == "os.environ"), None)
                    key = ast.unparse(target.slice).strip("'\"") if target else None
                elif isinstance(node, ast.Call) and ast.unparse(node.func) in {
                    "os.environ.update", "os.environ.setdefault", "os.putenv",
                    "os.environ.pop", "os.unsetenv",
                }:
                    key = ast.unparse(node.args[0]).strip("'\"") if node.args else "?"
                    target = node
                if target is not None:
                    writes.add((_module_name(path), key))
    assert ("graph_model", "TF_USE_LEGACY_KERAS") in writes, "the scan found no write at all"
    unexpected = sorted(
        (module, key) for module, key in writes
        if not any(_under(module, m) and key == k for m, k in ENVIRON_WRITES)
    )
    assert not unexpected, f"os.environ written by {unexpected}: pass settings objects instead"
