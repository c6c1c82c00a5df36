"""The compiled relabeler as an MLflow model, built from code (no pickle).

MLflow loads this file as the model: `load_context` reads the saved program (JSON plus its
sidecar, logged as artifacts) and builds the LM named in the model config at load time, with
its key read from the environment then; `predict` takes a DataFrame of trajectories (one per
row, the input schema's columns) and returns one row of results per input row, so batch
scoring and `mlflow.pyfunc.spark_udf` work. Nothing secret is stored in the model.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow.pyfunc

RESULT_COLUMNS = [
    "trajectory_id",
    "status",
    "stage",
    "reason",
    "hindsight_prompt",
    "confidence",
    "single_judge",
    "severity_weight",
]


def _cell(value: Any) -> Any:
    """DataFrame cells may hold JSON text (e.g. from Spark); decode it back to objects."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if hasattr(value, "tolist"):  # numpy arrays from parquet
        return value.tolist()
    return value


class RelabelerModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from agenther_dspy.optimizers.saving import load_program
        from agenther_dspy.settings import LMSettings, ProgramSettings

        config = dict(context.model_config or {})
        lm = LMSettings(
            model=config.get("model", LMSettings.model),
            base_url=config.get("base_url"),
            api_key_env=config.get("api_key_env"),
        )
        settings = ProgramSettings(
            min_confidence=float(config.get("min_confidence", ProgramSettings.min_confidence)),
            severity_threshold=float(
                config.get("severity_threshold", ProgramSettings.severity_threshold)
            ),
            max_attempts=int(config.get("max_attempts", ProgramSettings.max_attempts)),
        )
        self.lm = lm.build()
        self.program = load_program(context.artifacts["program"], **settings.limits())

    def predict(self, context, model_input, params=None):  # untyped: MLflow reads hints as a schema
        import pandas as pd
        from pydantic import ValidationError

        from agenther_dspy.execution import execute, short_error
        from agenther_dspy.schema import Trajectory

        rows = []
        for record in model_input.to_dict("records"):
            record = {key: _cell(value) for key, value in record.items() if value is not None}
            try:
                trajectory = Trajectory.model_validate(record)
            except ValidationError as error:  # one bad row is a result, not a failed batch
                rows.append(_row(record.get("trajectory_id", ""), "error", short_error(error)))
                continue
            run = execute(self.program, trajectory, lm=self.lm)
            analysis, relabel = run.analysis, run.relabel
            rows.append(
                _row(
                    trajectory.trajectory_id,
                    run.status,
                    run.reason,
                    stage=run.stage,
                    hindsight_prompt=relabel.hindsight_prompt if run.status == "accepted" else "",
                    confidence=run.confidence,
                    single_judge=run.single_judge,
                    severity_weight=float(analysis.severity_weight) if analysis else 0.0,
                )
            )
        return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _row(trajectory_id: str, status: str, reason: str, **values: Any) -> dict[str, Any]:
    """One output row; what a failed run does not have is empty or zero."""
    row = dict.fromkeys(RESULT_COLUMNS, "")
    row.update(confidence=0.0, single_judge=False, severity_weight=0.0)
    row.update(trajectory_id=trajectory_id, status=status, reason=reason, **values)
    return row


mlflow.models.set_model(RelabelerModel())
