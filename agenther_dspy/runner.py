"""Batch execution: every input record in, one result per record out, accepted rows written
as they arrive.

A record-level problem (invalid input, an LM call that failed after its retries) becomes a
result with a reason; the batch goes on. Work is handed to `concurrency` threads with a
bounded number of records in flight, so memory stays flat however long the input is.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import dspy

from agenther_dspy.augment import sample_from_prediction
from agenther_dspy.formats import InvalidRecord, Record
from agenther_dspy.schema import AugmentedSample, OutputFormat


@dataclass
class TrajectoryResult:
    """What happened to one input record."""

    trajectory_id: str
    status: str  # accepted | rejected | skipped | error | invalid
    stage: str
    reason: str
    file: str
    line: int
    confidence: float = 0.0
    single_judge: bool = False
    sample: AugmentedSample | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("sample")
        return data


@dataclass
class BatchSummary:
    counts: Counter = field(default_factory=Counter)
    rows_written: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def process_record(
    program: dspy.Module, record: Record, lm: dspy.LM | None, output_format: OutputFormat
) -> TrajectoryResult:
    trajectory = record.trajectory
    try:
        with dspy.context(lm=lm) if lm is not None else nullcontext():
            prediction = program(trajectory=trajectory)
    except Exception as error:  # an LM failure after its retries: record it, go on
        return TrajectoryResult(
            trajectory.trajectory_id,
            "error",
            "",
            f"{type(error).__name__}: {' '.join(str(error).split())[:300]}",
            record.file,
            record.line,
        )
    return TrajectoryResult(
        trajectory.trajectory_id,
        prediction.status,
        prediction.stage,
        prediction.reason,
        record.file,
        record.line,
        confidence=float(prediction.confidence),
        single_judge=bool(prediction.single_judge),
        sample=sample_from_prediction(trajectory, prediction, output_format),
    )


def invalid_result(record: InvalidRecord) -> TrajectoryResult:
    return TrajectoryResult("", "invalid", "input", record.reason, record.file, record.line)


def _results(
    records: Iterable[Record | InvalidRecord],
    program: dspy.Module,
    lm: dspy.LM | None,
    output_format: OutputFormat,
    concurrency: int,
) -> Iterator[TrajectoryResult]:
    """Results in completion order; at most 2 × concurrency records in flight."""
    if concurrency <= 1:
        for record in records:
            if isinstance(record, InvalidRecord):
                yield invalid_result(record)
            else:
                yield process_record(program, record, lm, output_format)
        return
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        pending: set[Future] = set()
        for record in records:
            if isinstance(record, InvalidRecord):
                yield invalid_result(record)
                continue
            pending.add(pool.submit(process_record, program, record, lm, output_format))
            if len(pending) >= 2 * concurrency:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        for future in pending:
            yield future.result()


def run_batch(
    records: Iterable[Record | InvalidRecord],
    program: dspy.Module,
    *,
    output_path: str | Path,
    output_format: OutputFormat | str = OutputFormat.SFT,
    lm: dspy.LM | None = None,
    concurrency: int = 1,
    on_result: Callable[[TrajectoryResult], None] | None = None,
) -> BatchSummary:
    output_format = OutputFormat(output_format)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    summary = BatchSummary()
    with output_path.open("w", encoding="utf-8") as out:
        for result in _results(records, program, lm, output_format, concurrency):
            summary.counts[result.status] += 1
            if result.sample is not None:
                _write_row(out, result.sample.model_dump(mode="json"))
                summary.rows_written += 1
            if on_result is not None:
                on_result(result)
    return summary


def _write_row(out: IO[str], row: dict[str, Any]) -> None:
    out.write(json.dumps(row, ensure_ascii=False) + "\n")
    out.flush()
