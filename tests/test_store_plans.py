"""FalkorDB's plans for the statements a recorded donation runs: they must start from the
donation id's index. With labels on the relationship's ends FalkorDB started from a scan of
every donor, and at 1M donors each `recordDonation` took seconds (the 1M soak timed out)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import fresh_store_settings
from falkordb import FalkorDB

from graph_store import open_store, statement

PARAMS = {
    "api/record_donation": {
        "id": "g1", "donor_id": "d1", "nonprofit_id": "n1", "amount": 1.0, "ts": None, "now": 1,
        "load_id": "", "recorded_by": "donor:d1",
    },
    "etl/donation_endpoints": {"ids": ["g1"]},
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_a_donation_is_found_by_its_id_not_by_scanning_donors(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = fresh_store_settings("falkordb", request, tmp_path)
    store = open_store(settings)
    try:
        store.apply_schema()
        graph = FalkorDB(
            host="127.0.0.1", port=settings.falkordb_port, password=settings.falkordb_secret()
        ).select_graph(settings.graph_name)
        plan = str(graph.explain(statement(name).text, PARAMS[name]))
    finally:
        store.close()
    assert "Edge By Index Scan | [" in plan
    assert "Label Scan" not in plan, plan
