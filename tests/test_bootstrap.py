"""entrypoints.bootstrap: settings read once, and every service built over the adapters given
(a test's own store and event bus) or the configured ones."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conftest import TEST_AUTH

from donor_match.services.events import InMemoryEventBus
from donor_match.settings import AppSettings
from entrypoints.bootstrap import Settings, bootstrap
from graph_store import GraphStore, Row, Statement, StoreSettings


class Recording:
    """A store that passes every call to a real one and notes reads and closing (the real one
    stays open: the fixture closes it)."""

    def __init__(self, store: GraphStore) -> None:
        self._store = store
        self.reads: list[str] = []
        self.closed = False

    def read(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        self.reads.append(statement.name)
        return self._store.read(statement, params)

    def close(self) -> None:
        self.closed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_services_run_on_the_store_bootstrap_was_given_and_close_with_it(
    store: GraphStore, store_settings: StoreSettings, tmp_path: Path
) -> None:
    settings = Settings.load(AppSettings(DONOR_MATCH_MODELS_DIR=tmp_path / "models"),
                             store_settings, TEST_AUTH)
    product, analyst, events = Recording(store), Recording(store), InMemoryEventBus()
    wrapped: list[Recording] = []

    def wrap(inner: GraphStore) -> GraphStore:
        wrapped.append(Recording(inner))
        return wrapped[-1]  # type: ignore[return-value]

    runtime = bootstrap(settings, store=product, analyst_store=analyst,  # type: ignore[arg-type]
                        events=events, wrap_store=wrap)
    assert runtime.settings is settings
    assert runtime.services.events is events
    assert runtime.services.matches.model is None  # nothing trained under models_dir

    runtime.services.catalog.causes()
    assert wrapped[0].reads == ["api/causes"] and product.reads == ["api/causes"]
    assert analyst.reads == []  # the analysts' store serves analytics only

    runtime.close()  # closes what it holds: the wrapper (which owns the product store)
    assert wrapped[0].closed and analyst.closed


def test_settings_not_given_are_read_from_the_environment(monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.setenv("DONOR_MATCH_MODELS_DIR", str(tmp_path / "env-models"))
    given = AppSettings(DONOR_MATCH_MODELS_DIR=tmp_path / "given")
    assert Settings.load().app.models_dir == tmp_path / "env-models"
    assert Settings.load(app=given).app is given
