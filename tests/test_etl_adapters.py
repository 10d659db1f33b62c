"""The DonorsChoose and IRS EO BMF adapters on small hand-made files with the real headers."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import store_env

from etl.export import GraphExport, export_graph
from etl.pipeline import LoadOptions, LoadReport, run_load
from etl.sources import SourceError, open_source
from etl.sources.donorschoose import split_tree
from etl.sources.irs_bmf import ntee_causes
from graph_store import GraphStore, StoreSettings

FIXTURES = Path(__file__).parent / "fixtures"
NOW = 1_735_689_600.0
SCHOOL_SF = "5aa86a53f658c198fd4e42c541411c76"
PROJECT_BOOKS = "7f3a9d2e1c4b5a6f8e9d0c1b2a3f4e5d"


def load(store: GraphStore, fmt: str, path: Path, tmp_path: Path) -> LoadReport:
    report = run_load(store, open_source(fmt, path),
                      LoadOptions(loads_dir=tmp_path / "loads", now=NOW, max_reject_rate=0.5),
                      path=path)
    assert report.ok, report.error
    return report


def nodes(graph: GraphExport, label: str) -> dict[str, dict[str, Any]]:
    return {n["properties"]["id"]: n["properties"] for n in graph.nodes if n["labels"] == [label]}


def edges(graph: GraphExport, kind: str) -> set[tuple[str, str]]:
    return {(r["source"], r["target"]) for r in graph.relationships if r["type"] == kind}


def without_lineage(graph: GraphExport) -> str:
    def strip(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**i, "properties": {k: v for k, v in i["properties"].items()
                                     if k != "load_id"}} for i in items]

    return GraphExport(strip(graph.nodes), strip(graph.relationships)).canonical()


def test_split_tree_keeps_the_category_with_a_comma() -> None:
    assert split_tree("Math & Science, Warmth, Care & Hunger") == [
        "Math & Science", "Warmth, Care & Hunger"]
    assert split_tree("Warmth, Care & Hunger") == ["Warmth, Care & Hunger"]
    assert split_tree("  ") == []


def test_donorschoose_maps_schools_projects_categories_and_donations(
    store: GraphStore, tmp_path: Path
) -> None:
    report = load(store, "donorschoose", FIXTURES / "donorschoose", tmp_path)
    counts = {name: (e.accepted, e.rejected) for name, e in report.entities.items()}
    assert counts == {
        "regions": (3, 0), "causes": (11, 0), "donors": (3, 1), "nonprofits": (3, 0),
        "initiatives": (4, 0), "nonprofit_causes": (6, 0), "initiative_causes": (12, 0),
        "donations": (4, 3),
    }
    graph = export_graph(store)
    schools = nodes(graph, "Nonprofit")
    assert schools[SCHOOL_SF]["name"] == "Mission High School"
    assert (SCHOOL_SF, "US-CA") in edges(graph, "LOCATED_IN")
    assert (PROJECT_BOOKS, SCHOOL_SF) in edges(graph, "INITIATIVE_OF")
    causes = nodes(graph, "Cause")
    assert causes["dc-cat-warmth-care-hunger"]["name"] == "Warmth, Care & Hunger"
    assert ("dc-sub-literacy", "dc-cat-literacy-language") in edges(graph, "PART_OF")
    works_on = edges(graph, "WORKS_ON")
    assert {c for s, c in works_on if s == SCHOOL_SF} == {
        "dc-cat-literacy-language", "dc-cat-math-science", "dc-cat-warmth-care-hunger"}
    assert (PROJECT_BOOKS, "dc-sub-literacy") in works_on
    donors = nodes(graph, "Donor")
    assert donors["e1b2c3d4e5f60718293a4b5c6d7e8f90"]["donor_type"] == "teacher"
    assert donors["d0a1b2c3d4e5f60718293a4b5c6d7e8f"]["zip"] == "941"
    gifts = {r["properties"]["id"]: r for r in graph.relationships if r["type"] == "DONATED"}
    big = gifts["688729120858666221208529ee3fc18e"]
    assert (big["source"], big["target"]) == ("d0a1b2c3d4e5f60718293a4b5c6d7e8f", SCHOOL_SF)
    assert big["properties"]["amount"] == 1250.0
    assert big["properties"]["initiative_id"] == PROJECT_BOOKS
    assert big["properties"]["ts"] == 1_514_110_557  # 2017-12-24 10:15:57 UTC
    assert gifts["18a234b9d1e538c431761d521ea7799d"]["properties"]["amount"] == 0.59
    with (tmp_path / "loads" / report.load_id / "rejects.csv").open(newline="") as handle:
        reasons = sorted((r["column"], r["reason"]) for r in csv.DictReader(handle))
    assert reasons == [
        ("amount", "negative amount"),
        ("donor_id", "unknown Donor id 'a3d4e5f60718293a4b5c6d7e8f90a1b2' "
                     "(its row in this load was rejected)"),
        ("initiative_id", "project 'ffffffffffffffffffffffffffffffff' is not in Projects.csv"),
        ("zip", "not a ZIP code: '7A1'"),
    ]


def test_donorschoose_dotted_headers_load_the_same_graph(
    store: GraphStore, store_settings: StoreSettings, tmp_path: Path
) -> None:
    from graph_store import open_store

    dotted = tmp_path / "dotted"
    dotted.mkdir()
    for source in (FIXTURES / "donorschoose").iterdir():
        header, rest = source.read_text().split("\n", 1)
        (dotted / source.name).write_text(header.replace(" ", ".") + "\n" + rest)
    load(store, "donorschoose", FIXTURES / "donorschoose", tmp_path)
    other = open_store(store_settings.model_copy(update={"graph_name":
                                                         store_settings.graph_name + "_dots"}))
    try:
        other.apply_schema()
        load(other, "donorschoose", dotted, tmp_path)
        assert without_lineage(export_graph(other)) == without_lineage(export_graph(store))
    finally:
        other.close()


def test_donorschoose_needs_its_files_and_columns(tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(FIXTURES / "donorschoose", partial)
    (partial / "Schools.csv").unlink()
    with pytest.raises(SourceError, match=r"Schools\.csv: missing"):
        open_source("donorschoose", partial)
    (partial / "Schools.csv").write_text("School ID,School State\nx,Texas\n")
    with pytest.raises(SourceError, match=r"Schools\.csv: missing columns \['school name'\]"):
        open_source("donorschoose", partial).check()


def test_ntee_codes() -> None:
    assert ntee_causes("K31") == ("ntee-K", "ntee-K31")
    assert ntee_causes(" b20z ") == ("ntee-B", "ntee-B20Z")
    assert ntee_causes("9ZZ") is None
    assert ntee_causes("") is None


def test_irs_bmf_keys_nonprofits_by_ein_with_ntee_causes(
    store: GraphStore, tmp_path: Path
) -> None:
    report = load(store, "irs-bmf", FIXTURES / "irs_bmf", tmp_path)
    counts = {name: (e.accepted, e.rejected) for name, e in report.entities.items()}
    assert counts == {"regions": (4, 0), "causes": (10, 0), "nonprofits": (6, 1),
                      "nonprofit_causes": (8, 3)}
    graph = export_graph(store)
    orgs = nodes(graph, "Nonprofit")
    assert orgs["941234567"]["name"] == "SAN FRANCISCO FOOD BANK"
    assert orgs["941234567"]["zip"] == "94107-3425"
    assert orgs["012345678"]["ein"] == "012345678"  # the leading zero restored
    assert "260000002" in orgs and orgs["260000002"].get("ntee_code") is None
    causes = nodes(graph, "Cause")
    assert causes["ntee-K"]["name"] == "Food, Agriculture & Nutrition"
    assert causes["ntee-B"]["name"] == "Education"
    assert ("ntee-K31", "ntee-K") in edges(graph, "PART_OF")
    assert {("941234567", "ntee-K"), ("941234567", "ntee-K31")} <= edges(graph, "WORKS_ON")
    assert ("135562308", "US-NY") in edges(graph, "LOCATED_IN")


@pytest.mark.parametrize(
    ("fmt", "path", "entity", "accepted", "rejected"),
    [
        ("irs-bmf", FIXTURES / "irs_bmf" / "eo_sample.csv", "nonprofits", 6, 1),
        ("donorschoose", FIXTURES / "donorschoose", "donations", 4, 3),
    ],
)
def test_cli_loads_each_source_kind(
    store_settings: StoreSettings, tmp_path: Path, fmt: str, path: Path, entity: str,
    accepted: int, rejected: int,
) -> None:
    env = store_env(store_settings)
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "etl", "load", "--format", fmt,
         "--max-reject-rate", "0.5", "--json", str(path)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)["entities"][entity]
    assert (summary["accepted"], summary["rejected"]) == (accepted, rejected)
    load_dir = tmp_path / "var" / "loads" / json.loads(done.stdout)["load_id"]
    assert (load_dir / "manifest.json").is_file()
