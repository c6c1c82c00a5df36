"""MLflow: where runs go and what each command logs. The only module that talks to MLflow.

Runs go to `--tracking-uri`, else `$MLFLOW_TRACKING_URI`, else `sqlite:///mlflow.db` in the
working directory, under the experiment `agenther-dspy`. Nothing secret is logged: params
are built from our own settings, URLs lose their user-info, and every value is scrubbed of
the values of environment variables that hold keys or tokens before it leaves the process.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from agenther_dspy.redaction import scrub

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
EXPERIMENT = "agenther-dspy"


def resolve_tracking_uri(uri: str | None = None) -> str:
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


class TrackedRun:
    """A thin handle on one active MLflow run, or on none when tracking is off (then every
    call does nothing, so commands log the same way either way). Every value passes through
    `scrub`."""

    def __init__(self, mlflow_module: Any = None, run: Any = None) -> None:
        self._mlflow = mlflow_module
        self.run_id: str = run.info.run_id if run is not None else ""

    def log_params(self, params: dict[str, Any]) -> None:
        if self._mlflow is not None:
            clean = {k: str(scrub(v))[:6000] for k, v in params.items() if v is not None}
            self._mlflow.log_params(clean)

    def log_metrics(self, metrics: dict[str, float]) -> None:
        if self._mlflow is not None:
            self._mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})

    def log_json(self, data: Any, artifact_file: str) -> None:
        if self._mlflow is not None:
            self._mlflow.log_dict(scrub(data), artifact_file)

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Log a file's scrubbed copy, so a secret can never leave inside an artifact."""
        if self._mlflow is None:
            return
        path = Path(path)
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / path.name
            copy.write_text(scrub(path.read_text(encoding="utf-8")), encoding="utf-8")
            self._mlflow.log_artifact(str(copy), artifact_path)

    def log_program_model(
        self,
        program_path: str | Path,
        *,
        model_config: dict[str, Any],
        registered_model_name: str | None = None,
    ) -> None:
        """The saved program as an MLflow model of this run (see `log_program_model`)."""
        if self._mlflow is not None:
            log_program_model(
                program_path,
                model_config=model_config,
                registered_model_name=registered_model_name,
            )

    def traces(self, enabled: bool = True) -> AbstractContextManager[None]:
        """Inside, DSPy calls are traced into this run (see `dspy_traces`)."""
        return dspy_traces(enabled and self._mlflow is not None)


@contextmanager
def tracked_run(
    command: str,
    *,
    enabled: bool = True,
    tracking_uri: str | None = None,
) -> Iterator[TrackedRun]:
    """An MLflow run for one command, or a no-op handle when tracking is off."""
    if not enabled:
        yield TrackedRun()
        return
    import mlflow

    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=_artifact_location(uri))
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=command) as run:
        mlflow.set_tags({"agenther.command": command})
        yield TrackedRun(mlflow, run)


def _artifact_location(tracking_uri: str) -> str | None:
    """Artifacts beside a sqlite store (its folder's `mlruns/`), not wherever a command runs;
    MLflow's own default for other stores."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///")).resolve()
    return (database.parent / "mlruns").as_uri()


@contextmanager
def dspy_traces(enabled: bool) -> Iterator[None]:
    """Inside, every DSPy module and LM call (the optimizer's too) is an MLflow trace linked
    to the active run. MLflow drops the LM's API key and other credentials from the traced
    LM parameters; what remains are prompts, answers and settings."""
    if not enabled:
        yield
        return
    import mlflow

    mlflow.dspy.autolog(log_traces=True, log_traces_from_compile=True, silent=True)
    try:
        yield
    finally:
        mlflow.dspy.autolog(disable=True, silent=True)


REGISTERED_MODEL = "agenther-dspy-relabeler"


def log_program_model(
    program_path: str | Path,
    *,
    model_config: dict[str, Any],
    registered_model_name: str | None = REGISTERED_MODEL,
) -> Any:
    """Log the saved program as a models-from-code pyfunc in the active run, and register it.

    The model is `serving.py` plus the program JSON and its sidecar as artifacts; the LM is
    named in `model_config` and built when the model is loaded. Returns MLflow's ModelInfo.
    """
    import mlflow

    from agenther_dspy import serving
    from agenther_dspy.optimizers.saving import sidecar_path

    program_path = Path(program_path)
    return mlflow.pyfunc.log_model(
        name="relabeler",
        python_model=serving.__file__,
        artifacts={
            "program": str(program_path),
            "program_meta": str(sidecar_path(program_path)),
        },
        model_config=scrub(model_config),
        registered_model_name=registered_model_name,
        pip_requirements=[f"agenther-dspy=={_version()}"],
    )


def _version() -> str:
    from importlib.metadata import version

    return version("agenther-dspy")


def fetch_program(uri: str, tracking_uri: str | None = None) -> Path:
    """A local path to the program JSON behind `models:/NAME/VERSION` or `runs:/ID/PATH`."""
    import mlflow

    mlflow.set_tracking_uri(resolve_tracking_uri(tracking_uri))
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    if local.is_file():
        return local
    candidates = sorted(
        p
        for p in local.rglob("*.json")
        if not p.name.endswith(".meta.json")
        and p.with_name(p.name.removesuffix(".json") + ".meta.json").is_file()
    )
    if not candidates:
        raise FileNotFoundError(f"{uri}: no saved program (a .json with its .meta.json) inside")
    return candidates[0]


# ---------------------------------------------------------------------------- per-run rows

RESULTS_TABLE_ROWS = 1000  # `run` logs the first rows of its results; the counts cover all
_RESULT_COLUMNS = (
    "trajectory_id",
    "status",
    "single_judge",
    "stage",
    "failure_type",
    "severity_weight",
    "hindsight_prompt",
    "confidence",
    "relabel_confidence",
    "judge_confidence",
    "attempts",
    "reason",
    "lm_calls",
    "seconds",
    "file",
    "line",
)


def log_results_table(
    tracking: TrackedRun, results_path: str | Path, limit: int = RESULTS_TABLE_ROWS
) -> None:
    """The batch's first `limit` results as an MLflow table (`results_table.json`), one row
    per record: request, decision, confidences and reason. A resumed batch logs the whole
    results file so far; how many rows of how many records is logged as a parameter."""
    if not tracking.run_id:
        return
    rows: list[dict[str, Any]] = []
    total = 0
    with Path(results_path).open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            total += 1
            if len(rows) < limit:
                result = json.loads(line)
                rows.append({column: result.get(column) for column in _RESULT_COLUMNS})
    _log_table(tracking, rows, _RESULT_COLUMNS, "results_table.json")
    tracking.log_params({"results_table": f"first {len(rows)} of {total} records"})


_EVALUATION_COLUMNS = (
    "trajectory_id",
    "gold_recoverable",
    "gold_failure_type",
    "status",
    "failure_type",
    "hindsight_prompt",
    "confidence",
    "score",
    "feedback",
    "reason",
    "lm_calls",
    "seconds",
)


def log_evaluation_table(tracking: TrackedRun, rows: list[Any]) -> None:
    """Every evaluated run as a row of an MLflow table (`evaluation_table.json`): request,
    decision, confidence, the fidelity score, each of its components and the feedback."""
    if not tracking.run_id:
        return
    table = []
    components: list[str] = []
    for row in rows:
        data = {column: getattr(row, column) for column in _EVALUATION_COLUMNS}
        for name, value in row.components.items():
            data[f"component_{name}"] = value
            if f"component_{name}" not in components:
                components.append(f"component_{name}")
        table.append(data)
    _log_table(tracking, table, (*_EVALUATION_COLUMNS, *components), "evaluation_table.json")


def _log_table(tracking: TrackedRun, rows: list[dict], columns: tuple, artifact_file: str) -> None:
    import mlflow

    data = {column: [scrub(row.get(column)) for row in rows] for column in columns}
    mlflow.log_table(data=data, artifact_file=artifact_file, run_id=tracking.run_id)


def run_location(run_id: str, tracking_uri: str | None = None) -> str:
    """Where an MLflow run is and the command that shows it in MLflow's UI."""
    import mlflow

    uri = resolve_tracking_uri(tracking_uri)
    if uri.startswith("sqlite:///"):
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    shown = scrub(uri)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_run(run_id).info.experiment_id
    if uri.startswith(("http://", "https://")):
        return f"MLflow run {run_id}: {shown.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"
    return (
        f"MLflow run {run_id}: run `mlflow ui --backend-store-uri {shown}` and open "
        f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{run_id}"
    )
