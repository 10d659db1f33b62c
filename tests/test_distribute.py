"""Training under tf.distribute: MirroredStrategy over two replicas, multi-worker from TF_CONFIG.

Each case runs in a fresh interpreter: logical devices and the multi-worker strategy must be set
up before TensorFlow initialises its runtime.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl.snapshot import write_snapshot
from etl.synth import SynthConfig, generate

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import json, sys
from pathlib import Path
import graph_model
import tensorflow as tf
cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    cpus[0], [tf.config.LogicalDeviceConfiguration()] * int(sys.argv[2]))
from graph_model.config import TrainConfig
from graph_model.snapshot import read_snapshot
from graph_model.split import temporal_split
from graph_model.train import fit
config = TrainConfig(steps=12, eval_every=12, seed=0, distribution=sys.argv[3])
snapshot = read_snapshot(Path(sys.argv[1]))
split = temporal_split(snapshot.donations, len(snapshot.nonprofit_ids), config.holdout_fraction)
trained = fit(snapshot, split, config)
print(json.dumps({**trained.distribution, "losses": [p["loss"] for p in trained.history.loss]}))
"""


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("snapshot")
    graph = SynthConfig(donors=150, nonprofits=40, causes=5, regions=4, donations=1500, seed=2)
    write_snapshot(generate(graph), directory)
    return directory


def _train(snapshot_dir: Path, cpus: int, distribution: str, env: dict[str, str] | None = None):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(snapshot_dir), str(cpus), distribution],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mirrored_strategy_trains_on_two_replicas(snapshot_dir: Path) -> None:
    run = _train(snapshot_dir, cpus=2, distribution="mirrored")
    assert (run["strategy"], run["replicas"]) == ("MirroredStrategy", 2)
    losses = run["losses"]
    assert len(losses) == 12 and all(loss == loss for loss in losses)  # no NaN
    assert sum(losses[-4:]) < sum(losses[:4])  # it learns


def test_tf_config_selects_multi_worker(snapshot_dir: Path) -> None:
    port = 20000 + os.getpid() % 20000
    tf_config = {
        "cluster": {"worker": [f"localhost:{port}"]},
        "task": {"type": "worker", "index": 0},
    }
    run = _train(
        snapshot_dir, cpus=1, distribution="auto", env={"TF_CONFIG": json.dumps(tf_config)}
    )
    # CollectiveAllReduceStrategy implements MultiWorkerMirroredStrategy.
    assert (run["strategy"], run["replicas"]) == ("CollectiveAllReduceStrategy", 1)
    assert sum(run["losses"][-4:]) < sum(run["losses"][:4])
