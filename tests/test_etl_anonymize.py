"""The anonymized analyst graph: no PII survives, k-anonymity holds, aggregates agree."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from conftest import store_env

from etl.anonymize import (
    SUPPRESSED_DONOR,
    AnonymizeError,
    aggregates,
    anonymize,
    bucket_step,
    pseudonym,
    round_amount,
)
from etl.export import GraphExport, export_graph
from etl.loader import load_tables
from etl.synth import SynthConfig, generate
from etl.tables import Tables
from graph_store import GraphStore, StoreSettings, open_store

SECRET = "test-secret-0123456789abcdef"
GRAPH = SynthConfig(donors=400, nonprofits=40, causes=6, regions=5, donations=3_000, seed=13)
FIRST = ("Maria", "John", "Aiko", "Oluwaseun", "Zoë", "Liam", "Priya", "Mateo")
LAST = ("García", "Smith", "Tanaka", "Adeyemi", "Müller", "O'Brien", "Patel", "Rossi")
TYPES = ("individual", "individual", "individual", "teacher", "foundation")


def with_pii(tables: Tables) -> Tables:
    """Donors with names, e-mails, phones, streets and ZIP codes (some shared, most unique)."""
    rows = tables["donors"].to_pylist()
    for i, row in enumerate(rows):
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        row.update(
            name=f"{first} {last} {i}", email=f"{first.lower()}.{i}@example.org",
            phone=f"+1-415-555-{i:04d}", street=f"{100 + i} Valencia Street",
            city="San Francisco", zip=f"{94100 + (i * 7) % 400:05d}",
            donor_type=TYPES[i % len(TYPES)],
        )
    return {**tables, "donors": pa.Table.from_pylist(rows)}


@pytest.fixture
def graphs(store_settings: StoreSettings) -> Iterator[tuple[GraphStore, GraphStore, Tables]]:
    tables = with_pii(generate(GRAPH))
    source = open_store(store_settings)
    analyst = open_store(store_settings, analyst=True)
    source.apply_schema()
    load_tables(source, tables)
    yield source, analyst, tables
    source.close()
    analyst.close()


def strings(graph: GraphExport) -> list[str]:
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                found.append(str(key))
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for item in [*graph.nodes, *graph.relationships]:
        walk(item)
    return found


def test_no_pii_value_survives_and_k_anonymity_holds(
    graphs: tuple[GraphStore, GraphStore, Tables],
) -> None:
    source, analyst, tables = graphs
    report = anonymize(source, analyst, SECRET, k=5)
    graph = export_graph(analyst)
    values = set(strings(graph))
    text = "\n".join(values)
    digit_runs = set(re.findall(r"\d+", text))

    donors = tables["donors"].to_pylist()
    pii = {"name", "email", "phone", "street", "zip", "id"}
    for donor in donors:
        for column in pii:
            value = str(donor[column])
            assert value not in values, (column, value)
            if value.isdigit():
                assert value not in digit_runs, (column, value)  # a full ZIP in any value
            else:
                assert value not in text, (column, value)
    for gift in tables["donations"].column("id").to_pylist():
        assert gift not in text
    assert SECRET not in text
    assert "San Francisco" not in text  # donor cities are never read

    analyst_donors = [n["properties"] for n in graph.nodes if n["labels"] == ["Donor"]]
    assert {"name", "email", "phone", "street", "city"}.isdisjoint(
        {key for props in analyst_donors for key in props})
    assert all(len(p.get("zip") or "") in (0, 3) for p in analyst_donors)
    region = {r["source"]: r["target"] for r in graph.relationships if r["type"] == "LIVES_IN"}
    groups = Counter(
        (p.get("zip"), region.get(p["id"]), p.get("donor_type"), p.get("first_year"))
        for p in analyst_donors if p["id"] != SUPPRESSED_DONOR
    )
    assert min(groups.values()) >= 5
    assert report.groups == len(groups) and report.smallest_group == min(groups.values())
    released = sum(report.released_by_level.values())
    assert released + report.suppressed == report.donors == GRAPH.donors
    assert report.generalized > 0  # unique ZIPs force generalization
    assert len(analyst_donors) == released + (1 if report.suppressed else 0)

    gifts = [r["properties"] for r in graph.relationships if r["type"] == "DONATED"]
    assert len(gifts) == GRAPH.donations
    assert all(g["ts"] % 86_400 == 0 for g in gifts)
    assert all(g["id"].startswith("gift_") for g in gifts)


def test_aggregates_agree_within_the_rounding(
    graphs: tuple[GraphStore, GraphStore, Tables],
) -> None:
    source, analyst, tables = graphs
    anonymize(source, analyst, SECRET, k=5)
    src, out = aggregates(source), aggregates(analyst)
    works_on: dict[str, set[str]] = {}
    for row in tables["nonprofit_causes"].to_pylist():
        works_on.setdefault(row["cause_id"], set()).add(row["nonprofit_id"])
    gifts = tables["donations"].to_pylist()
    for cause, (count, amount) in src["cause"].items():
        got_count, got_amount = out["cause"][cause]
        assert got_count == count
        slack = sum(bucket_step(g["amount"]) / 2 for g in gifts
                    if g["nonprofit_id"] in works_on[cause])
        assert abs(got_amount - amount) <= slack + 1e-6
    assert {k: c for k, (c, _) in out["region"].items()} == {
        k: c for k, (c, _) in src["region"].items()}


def test_same_secret_same_graph_other_secret_other_pseudonyms(
    graphs: tuple[GraphStore, GraphStore, Tables],
) -> None:
    source, analyst, _ = graphs
    anonymize(source, analyst, SECRET, k=3)
    first = export_graph(analyst).canonical()
    anonymize(source, analyst, SECRET, k=3)
    assert export_graph(analyst).canonical() == first
    anonymize(source, analyst, SECRET + "-rotated", k=3)
    assert export_graph(analyst).canonical() != first
    with pytest.raises(AnonymizeError, match="DONOR_MATCH_ANON_SECRET"):
        anonymize(source, analyst, "short", k=3)


def test_helpers() -> None:
    assert round_amount(7.4) == 7.0
    assert round_amount(37.5) == 40.0
    assert round_amount(612.0) == 600.0
    assert round_amount(12_345.0) == 12_000.0
    name = pseudonym(SECRET.encode(), "donor", "donor-000001")
    assert re.fullmatch(r"donor_[a-z]{24}", name)
    assert name == pseudonym(SECRET.encode(), "donor", "donor-000001")
    assert name != pseudonym(SECRET.encode(), "gift", "donor-000001")


def test_cli_anonymize(graphs: tuple[GraphStore, GraphStore, Tables],
                       store_settings: StoreSettings) -> None:
    env = store_env(store_settings)
    command = [sys.executable, "-m", "entrypoints.cli", "etl", "anonymize", "--json"]
    missing = subprocess.run(command, env={**env, "DONOR_MATCH_ANON_SECRET": ""},
                             capture_output=True, text=True, timeout=120, check=False)
    assert missing.returncode == 2 and "DONOR_MATCH_ANON_SECRET" in missing.stderr
    done = subprocess.run(command, env={**env, "DONOR_MATCH_ANON_SECRET": SECRET,
                                        "DONOR_MATCH_ANON_K": "4"},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["k"] == 4 and report["donors"] == GRAPH.donors
    assert "suppressed" in done.stderr
