from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest

from agenther_dspy.formats import read_trajectories
from agenther_dspy.schema import Trajectory

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
EXAMPLES = DATA / "agenther_example_trajectories.json"
# Real runs that ship with the repository: 3 failed tau2 airline runs, one raw tau2 results
# file (5 simulations, 2 failed) and the labeled set's runs (each with a `gold` key).
AGENTHER_RUNS = REPO / "examples" / "agenther_runs.jsonl"
TAU2_RAW = REPO / "examples" / "tau2_airline_results.json"
LABELED_DEV = REPO / "agenther_dspy" / "data" / "labeled" / "dev.jsonl"

# The full converted tau2 sets are too large to ship; they live in a data folder beside the
# repository, and the tests that need them carry the `needs_shared` marker.
SHARED = REPO.parent / "shared"
REAL_FAILED = SHARED / "data" / "real" / "tau2_grok_failed.jsonl"
REAL_SUCCESS = SHARED / "data" / "real" / "tau2_grok_success.jsonl"


def pytest_collection_modifyitems(config, items):
    """Skip the `needs_shared` tests only where the data folder beside the repo is absent."""
    if (SHARED / "data").is_dir():
        return
    skip = pytest.mark.skip(reason=f"needs the data folder {SHARED / 'data'}, which is absent")
    for item in items:
        if item.get_closest_marker("needs_shared"):
            item.add_marker(skip)


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


def labeled_run(trajectory_id: str) -> Trajectory:
    """A real run that ships with the package, in the labeled set, without its gold."""
    from agenther_dspy.eval.dataset import shipped_dir

    for path in sorted(shipped_dir().glob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["trajectory_id"] == trajectory_id:
                row.pop("gold", None)
                return Trajectory.model_validate(row)
    raise LookupError(trajectory_id)


# AgentHER's own program: the free relabeler after the keyword-rule detector. The tests of
# its acceptance algorithm, the runner and the optimizers build it by name, since the
# commands' default is the structured relabeler after the hybrid detector.
AGENTHER = {"relabeler": "free", "detector": "rules"}
