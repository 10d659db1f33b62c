"""Export every node and relationship with every property: graph comparisons and audits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from graph_store import GraphStore, statement

PAGE_SIZE = 5_000


@dataclass(frozen=True)
class GraphExport:
    nodes: list[dict[str, Any]]  # {"labels": [...], "properties": {...}}
    relationships: list[dict[str, Any]]  # {"type", "source_label", "source", ..., "properties"}

    def canonical(self) -> str:
        """One deterministic text of the whole graph (sorted keys and rows)."""
        nodes = sorted(json.dumps(n, sort_keys=True, default=str) for n in self.nodes)
        rels = sorted(json.dumps(r, sort_keys=True, default=str) for r in self.relationships)
        return json.dumps({"nodes": nodes, "relationships": rels}, indent=0)


def _all(store: GraphStore, name: str) -> list[dict[str, Any]]:
    export = statement(name)
    rows: list[dict[str, Any]] = []
    while True:
        page = store.read(export, {"skip": len(rows), "limit": PAGE_SIZE})
        rows.extend(page)
        if len(page) < PAGE_SIZE:
            return rows


def export_graph(store: GraphStore) -> GraphExport:
    return GraphExport(_all(store, "etl/export_nodes"), _all(store, "etl/export_relationships"))
