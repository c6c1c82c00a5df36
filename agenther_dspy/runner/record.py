"""One record: run the program on it (`execution.execute`) and turn what happened into
one line of the results file; invalid and duplicate records get their lines here too."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dspy

from agenther_dspy.augment import sample_from_prediction
from agenther_dspy.execution import execute
from agenther_dspy.formats import InvalidRecord, Record
from agenther_dspy.schema import AugmentedSample, OutputFormat

# Every status a results line can have, in the order counts are shown.
STATUSES = ("accepted", "rejected", "skipped", "error", "invalid")


@dataclass
class TrajectoryResult:
    """What happened to one input record: one line of the results file."""

    key: str
    trajectory_id: str
    status: str  # one of STATUSES
    stage: str
    reason: str
    file: str
    line: int
    index: int | None = None
    confidence: float = 0.0
    relabel_confidence: float | None = None
    judge_confidence: float | None = None
    judge_confidence_source: str | None = None  # "p_true" or "verbalized"
    single_judge: bool = False
    severity_weight: float | None = None
    failure_type: str | None = None
    recoverable_p: float | None = None  # the LM detector's P(recoverable), when it had one
    attempts: int = 0
    # The accepted request, or the best rejected one; and every attempt with its verdicts,
    # so a batch can be reviewed from its results file alone (`agenther-dspy review`).
    hindsight_prompt: str = ""
    attempt_log: list[dict[str, Any]] = field(default_factory=list)
    lm_calls: int = 0  # answered by the LM; answers from DSPy's cache are free and not counted
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    sample: AugmentedSample | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data.pop("sample")
        if data["index"] is None:
            data.pop("index")
        return data


def process_record(
    program: dspy.Module,
    record: Record,
    lm: dspy.LM | None,
    output_format: OutputFormat | str,
    *,
    settings: dict[str, Any] | None = None,
    keep_history: bool = False,
) -> TrajectoryResult:
    """Run the program on one record in the calling thread (`execution.execute`); every
    failure becomes a result. `settings` are the caller's DSPy settings."""
    trajectory = record.trajectory
    run = execute(program, trajectory, lm=lm, settings=settings, keep_history=keep_history)
    relabel, verdict, analysis = run.relabel, run.verdict, run.analysis
    sample = None
    if run.prediction is not None:
        sample = sample_from_prediction(trajectory, run.prediction, output_format)
    return TrajectoryResult(
        key=trajectory.trajectory_id,
        trajectory_id=trajectory.trajectory_id,
        status=run.status,
        stage=run.stage,
        reason=run.reason,
        file=record.file,
        line=record.line,
        index=record.index,
        confidence=round(run.confidence, 4),
        relabel_confidence=relabel.confidence if relabel is not None else None,
        judge_confidence=verdict.confidence if verdict is not None else None,
        judge_confidence_source=verdict.confidence_source if verdict is not None else None,
        single_judge=run.single_judge,
        severity_weight=analysis.severity_weight if analysis is not None else None,
        failure_type=analysis.failure_type if analysis is not None else None,
        recoverable_p=analysis.recoverable_p if analysis is not None else None,
        attempts=run.attempts,
        hindsight_prompt=relabel.hindsight_prompt if relabel is not None else "",
        attempt_log=list(getattr(run.prediction, "attempts", None) or []),
        lm_calls=run.lm_calls,
        prompt_tokens=run.prompt_tokens,
        completion_tokens=run.completion_tokens,
        seconds=round(run.seconds, 4),
        sample=sample,
    )


def _position(line: int, index: int | None) -> str:
    return f"@line:{line}" if index is None else f"@item:{index}"


def invalid_result(record: InvalidRecord) -> TrajectoryResult:
    key = _position(record.line, record.index)
    return TrajectoryResult(
        key, "", "invalid", "input", record.reason, record.file, record.line, record.index
    )


def duplicate_result(record: Record, first: int) -> TrajectoryResult:
    """`first`: the line (JSON lines) or the array item where the id was first seen."""
    tid = record.trajectory.trajectory_id
    where = f"line {first}" if record.index is None else f"item {first}"
    return TrajectoryResult(
        key=f"{tid}{_position(record.line, record.index)}",
        trajectory_id=tid,
        status="skipped",
        stage="input",
        reason=f"duplicate trajectory_id: the record at {where} has the same id",
        file=record.file,
        line=record.line,
        index=record.index,
    )
