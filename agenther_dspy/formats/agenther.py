"""Reading AgentHER-format trajectory files (a JSON array, JSON lines, or one JSON object).

Reading is lazy for JSON lines, so a batch of any size streams. A record that fails to parse
or validate does not stop the read: it comes out as an `InvalidRecord` naming the file, the
line (and array index) and the reason, and the records after it are still read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agenther_dspy.schema import Trajectory


class InputError(Exception):
    """The input as a whole cannot be read (missing file, not JSON at all)."""


@dataclass(frozen=True)
class Record:
    trajectory: Trajectory
    file: str
    line: int
    index: int | None = None


@dataclass(frozen=True)
class InvalidRecord:
    file: str
    line: int
    reason: str
    index: int | None = None

    def where(self) -> str:
        item = f" (item {self.index})" if self.index is not None else ""
        return f"{self.file}:{self.line}{item}"

    def __str__(self) -> str:
        return f"{self.where()}: {self.reason}"


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


def _read_json_lines(path: Path) -> Iterator[Record | InvalidRecord]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw.decode("utf-8-sig"))
            except UnicodeDecodeError as error:
                yield InvalidRecord(str(path), number, f"not UTF-8 text: {error.reason}")
                continue
            except json.JSONDecodeError as error:
                yield InvalidRecord(str(path), number, f"invalid JSON: {error.msg}")
                continue
            yield _validate(data, str(path), number, None)


def _read_json_array(path: Path, text: str) -> Iterator[Record | InvalidRecord]:
    """Decode a JSON array element by element, so each element keeps its line number."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line, counted_to, index = 1, 0, 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            line += text.count("\n", counted_to, pos)
            yield InvalidRecord(str(path), line, "invalid JSON: the array is not closed", index)
            return
        if text[pos] == "]":
            return
        line += text.count("\n", counted_to, pos)
        counted_to = pos
        try:
            data, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as error:
            # Past a syntax error the array's structure is unknown: stop here, loudly.
            reason = f"invalid JSON: {error.msg}; the rest of the file was not read"
            yield InvalidRecord(str(path), error.lineno, reason, index)
            return
        yield _validate(data, str(path), line, index)
        index += 1
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos < len(text) and text[pos] == ",":
            pos += 1


def read_trajectories(path: str | Path) -> Iterator[Record | InvalidRecord]:
    """Every record of an AgentHER-format file, valid or not, in file order."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open("rb") as handle:
        head = handle.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if not head:
        raise InputError(f"{path}: the file is empty")
    if head[0] == "[":
        yield from _read_json_array(path, path.read_text(encoding="utf-8-sig"))
        return
    if head[0] != "{":
        raise InputError(f"{path}: expected a JSON array or JSON lines of objects")
    with path.open("rb") as handle:
        first_line = next(line for line in handle if line.strip())
    try:
        json.loads(first_line.decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        # Not JSON lines: perhaps one pretty-printed object.
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as error:
            yield InvalidRecord(str(path), error.lineno, f"invalid JSON: {error.msg}")
            return
        yield _validate(data, str(path), 1, None)
        return
    yield from _read_json_lines(path)
