"""Reading AgentHER-format trajectory files (a JSON array, JSON lines, or one JSON object).

Reading is lazy for JSON lines, so a batch of any size streams. A record that fails to parse
or validate does not stop the read: it comes out as an `InvalidRecord` naming the file, the
line (and array index) and the reason, and the records after it are still read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agenther_dspy.formats.source import InputError, InvalidRecord, Record, iter_items
from agenther_dspy.schema import Trajectory

__all__ = [
    "InputError",
    "InvalidRecord",
    "Record",
    "describe_validation_error",
    "read_trajectories",
]


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each with the field path: `steps.0.observation: Field required`."""
    problems = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "record"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{path}: {message}")
    return "; ".join(problems)


def _validate(data: Any, file: str, line: int, index: int | None) -> Record | InvalidRecord:
    if not isinstance(data, dict):
        return InvalidRecord(
            file, line, f"expected a JSON object, got {type(data).__name__}", index
        )
    try:
        return Record(Trajectory.model_validate(data), file, line, index)
    except ValidationError as error:
        return InvalidRecord(file, line, describe_validation_error(error), index)


def read_trajectories(path: str | Path) -> Iterator[Record | InvalidRecord]:
    """Every record of an AgentHER-format file, valid or not, in file order."""
    for item in iter_items(path):
        if isinstance(item, InvalidRecord):
            yield item
        else:
            yield _validate(item.data, str(path), item.line, item.index)
