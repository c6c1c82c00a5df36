from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest

from agenther_dspy.formats import read_trajectories
from agenther_dspy.schema import Trajectory

# The read-only data folder that sits beside the repository.
SHARED = Path(__file__).resolve().parents[2] / "shared"
EXAMPLES = SHARED / "data" / "peer" / "agenther_example_trajectories.json"
REAL_FAILED = SHARED / "data" / "real" / "tau2_grok_failed.jsonl"
REAL_SUCCESS = SHARED / "data" / "real" / "tau2_grok_success.jsonl"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets its own agenther-dspy home and DSPy settings."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("AGENTHER_DSPY_HOME", str(home))
    monkeypatch.setenv("DSPY_CACHEDIR", str(home / "dspy-cache"))
    # Commands track to MLflow by default: never into the working directory of the tests.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    with dspy.context(lm=None, adapter=None):
        yield


@pytest.fixture(scope="session")
def examples() -> list[Trajectory]:
    return [record.trajectory for record in read_trajectories(EXAMPLES)]


@pytest.fixture
def copper(examples) -> Trajectory:
    return examples[0]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
