"""The API follows `CURRENT`: promoting or rolling back a model needs no restart."""

from __future__ import annotations

import asyncio
import gc
import mmap
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import LOOPBACK, TEST_AUTH, ServedGraph
from starlette.testclient import TestClient
from threadpoolctl import threadpool_info, threadpool_limits

from donor_match.services.served_model import ServedModel
from entrypoints.asgi import create_app
from graph_model.artifacts import CURRENT, current_artifact_dir, load_artifact


def test_served_model_switches_when_current_moves(
    served_graph: ServedGraph, tmp_path: Path
) -> None:
    source = current_artifact_dir(served_graph.app_settings.models_dir)
    assert source is not None
    models = tmp_path / "models"
    for version in ("v1", "v2"):
        shutil.copytree(source, models / version)
    (models / CURRENT).write_text("v1\n")
    served = ServedModel(models, recheck_s=0)
    assert served.current().version == "v1"
    (models / CURRENT).write_text("v2\n")
    assert served.current().version == "v2"
    # A broken version is refused; the last good one keeps serving.
    (models / "v3").mkdir()
    (models / CURRENT).write_text("v3\n")
    assert served.current().version == "v2"


def test_a_loaded_model_is_out_of_the_cycle_collectors_sight(
    served_graph: ServedGraph, tmp_path: Path
) -> None:
    """Its id lists and index live until the next promotion; a full collection that walked
    them (millions of objects at scale) would pause requests for tens of milliseconds."""
    source = current_artifact_dir(served_graph.app_settings.models_dir)
    assert source is not None
    shutil.copytree(source, tmp_path / "models" / "v1")
    (tmp_path / "models" / CURRENT).write_text("v1\n")
    model = ServedModel(tmp_path / "models").current()
    assert model is not None
    collected = {id(o) for o in gc.get_objects()}
    assert id(model.donor_ids) not in collected
    assert id(model.nonprofit_ids) not in collected


def test_embeddings_are_served_from_a_read_only_mapping_of_their_files(
    served_graph: ServedGraph,
) -> None:
    """The API's worker processes share one copy; plain ndarrays over it, since numpy's memmap
    subclass runs Python hooks on every row taken and every product."""
    source = current_artifact_dir(served_graph.app_settings.models_dir)
    assert source is not None
    model = load_artifact(source)
    for embeddings in (model.donor_embeddings, model.nonprofit_embeddings):
        assert type(embeddings) is np.ndarray
        assert not embeddings.flags.writeable and not embeddings.flags.owndata
        assert isinstance(embeddings.base, mmap.mmap | np.memmap)


def test_metrics_and_readiness_name_the_served_version(
    served_graph: ServedGraph, tmp_path: Path
) -> None:
    source = current_artifact_dir(served_graph.app_settings.models_dir)
    assert source is not None
    models = tmp_path / "models"
    shutil.copytree(source, models / "v1")
    (models / CURRENT).write_text("v1\n")
    settings = served_graph.app_settings.model_copy(update={"models_dir": models})
    with TestClient(create_app(settings, served_graph.store_settings, TEST_AUTH),
                    client=LOOPBACK) as client:
        assert client.get("/readyz").json()["model_version"] == "v1"
        assert 'donor_match_model_info{version="v1"} 1.0' in client.get("/metrics").text


def test_a_serving_process_runs_blas_on_one_thread(served_graph: ServedGraph) -> None:
    """A page's product is small and the API's parallelism is its processes; OpenBLAS's other
    threads would spin between requests, costing a core's worth of CPU per process."""

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    async def serve() -> None:  # the lifespan on the main thread's event loop, as in uvicorn
        async with app.router.lifespan_context(app):
            assert blas_threads() == {1}

    app = create_app(served_graph.app_settings, served_graph.store_settings, TEST_AUTH)
    with threadpool_limits(limits=2, user_api="blas"):
        asyncio.run(serve())
        assert blas_threads() == {2}  # given back when the app stops


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _fewer_rows(path: Path) -> None:
    np.save(path, np.load(path)[:-1])


def _other_dimension(path: Path) -> None:
    np.save(path, np.load(path)[:, :-1])


def _gifts_out_of_range(path: Path) -> None:
    with np.load(path) as gifts:
        donors, nonprofits = gifts["donors"], gifts["nonprofits"] + 10_000
    np.savez(path, donors=donors, nonprofits=nonprofits)


@pytest.mark.parametrize(("damaged", "damage"), [
    ("gifts.npz", _truncate),  # BadZipFile, which the loader did not expect
    ("gifts.npz", _gifts_out_of_range),  # IndexError while loading
    ("donor_embeddings.npy", _fewer_rows),  # loaded, then IndexError on requests
    ("nonprofit_embeddings.npy", _other_dimension),  # loaded, then ValueError on requests
    ("donor_ids.json", lambda p: p.write_text('{"not": "a list"}')),
])
def test_a_damaged_version_promoted_is_refused_and_the_previous_one_serves(
    served_graph: ServedGraph, tmp_path: Path, damaged: str, damage: Any
) -> None:
    source = current_artifact_dir(served_graph.app_settings.models_dir)
    assert source is not None
    models = tmp_path / "models"
    for version in ("good", "bad"):
        shutil.copytree(source, models / version)
    damage(models / "bad" / damaged)
    (models / CURRENT).write_text("good\n")
    served = ServedModel(models, recheck_s=0)
    (models / CURRENT).write_text("bad\n")
    model = served.current()
    assert model is not None and model.version == "good"
    donor = model.donor_ids[0]
    assert len(model.recommend(donor, 5)) == 5
    # A process that starts with the damaged version promoted serves none (UNAVAILABLE on
    # matches) rather than failing to start, or failing every request.
    assert ServedModel(models, recheck_s=0).current() is None
    if damage is not _truncate:  # what a loaded file holds is checked: a clear refusal
        with pytest.raises(ValueError, match="damaged"):
            load_artifact(models / "bad")
