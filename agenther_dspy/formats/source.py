"""The JSON items of an input file, each with the line it starts on.

Every foreign format arrives as one of three shapes: JSON lines, a JSON array, or one JSON
object (which may hold the array of records under a key, as tau2 result files do). This module
turns any of them into a stream of `Item`s (the decoded value, its line, its array index) and
`InvalidRecord`s for the parts that do not decode, so each reader deals only with the meaning of
a record. Arrays are decoded element by element: a broken element is reported at its own line
and the ones before it still arrive.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agenther_dspy.schema import Trajectory

HEAD_BYTES = 4096


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


@dataclass(frozen=True)
class Item:
    """One decoded JSON value of a file and where it starts."""

    data: Any
    line: int
    index: int | None = None


def check_file(path: str | Path) -> Path:
    """The path, once it is known to name a non-empty file; `InputError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if not read_head(path):
        raise InputError(f"{path}: the file is empty")
    return path


def read_head(path: Path) -> str:
    """The start of the file, without BOM or leading whitespace."""
    with path.open("rb") as handle:
        return handle.read(HEAD_BYTES).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def iter_array(
    path: Path, text: str, pos: int, first_line: int
) -> Generator[Item | InvalidRecord, None, int | None]:
    """The elements of the JSON array whose `[` is at `text[pos]`, each with its line.

    Returns the position just past the closing `]`, or None when the array is broken.
    """
    decoder = json.JSONDecoder()
    pos += 1
    line, counted_to, index = first_line, pos, 0
    while True:
        pos = _skip_space(text, pos)
        if pos >= len(text):
            line += text.count("\n", counted_to, pos)
            yield InvalidRecord(str(path), line, "invalid JSON: the array is not closed", index)
            return None
        if text[pos] == "]":
            return pos + 1
        line += text.count("\n", counted_to, pos)
        counted_to = pos
        try:
            data, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as error:
            # Past a syntax error the array's structure is unknown: stop here, loudly.
            reason = f"invalid JSON: {error.msg}; the rest of the file was not read"
            yield InvalidRecord(str(path), error.lineno, reason, index)
            return None
        yield Item(data, line, index)
        index += 1
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1


def _iter_lines(path: Path) -> Iterator[Item | InvalidRecord]:
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
            yield Item(data, number)


def _first_line_is_json(path: Path, *, and_more: bool = False) -> bool:
    """Whether the first non-blank line is a whole JSON value (and, if asked, not the last)."""
    with path.open("rb") as handle:
        lines = (line for line in handle if line.strip())
        first = next(lines)
        try:
            json.loads(first.decode("utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False
        return not and_more or next(lines, None) is not None


def iter_items(path: str | Path) -> Iterator[Item | InvalidRecord]:
    """Every top-level JSON value of the file: array elements, lines, or the one object.

    A file whose first line is a whole JSON value and which has more lines is JSON lines, even
    when its records are arrays (one chat per line as a bare list of messages).
    """
    path = check_file(path)
    head = read_head(path)
    if head[0] == "[" and _first_line_is_json(path, and_more=True):
        yield from _iter_lines(path)  # JSON lines whose records are arrays
        return
    if head[0] == "[":
        text = path.read_text(encoding="utf-8-sig")
        yield from iter_array(path, text, text.index("["), 1)
        return
    if head[0] != "{":
        raise InputError(f"{path}: expected a JSON array or JSON lines, or one JSON object")
    if _first_line_is_json(path):
        yield from _iter_lines(path)
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        yield InvalidRecord(str(path), error.lineno, f"invalid JSON: {error.msg}")
        return
    yield Item(data, 1)


def read_object_with_array(
    path: str | Path, key: str
) -> tuple[dict[str, Any], list[Item | InvalidRecord]]:
    """A JSON object's fields, with the array under `key` decoded element by element.

    The object's other fields come back decoded whole; the array's elements come back as
    `Item`s with their own line numbers, so a report can point into a large result file.
    """
    path = check_file(path)
    text = path.read_text(encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    if pos >= len(text) or text[pos] != "{":
        raise InputError(f"{path}: expected one JSON object with a {key!r} array")
    fields: dict[str, Any] = {}
    elements: list[Item | InvalidRecord] = []
    found = False
    pos += 1
    try:
        while True:
            pos = _skip_space(text, pos)
            if text[pos] == "}":
                break
            name, pos = decoder.raw_decode(text, pos)
            pos = _skip_space(text, pos)
            if text[pos] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
            pos = _skip_space(text, pos + 1)
            if name == key and text[pos] == "[":
                found = True
                decoding = iter_array(path, text, pos, text.count("\n", 0, pos) + 1)
                while True:
                    try:
                        elements.append(next(decoding))
                    except StopIteration as stop:
                        end = stop.value
                        break
                if end is None:  # the array is broken; what came before it is reported
                    return fields, elements
                pos = end
            else:
                fields[name], pos = decoder.raw_decode(text, pos)
            pos = _skip_space(text, pos)
            if text[pos] == ",":
                pos += 1
    except (json.JSONDecodeError, IndexError) as error:
        lineno = getattr(error, "lineno", text.count("\n") + 1)
        message = getattr(error, "msg", "the object is not closed")
        raise InputError(f"{path}:{lineno}: invalid JSON: {message}") from None
    if not found:
        raise InputError(f"{path}: no {key!r} array in the file")
    return fields, elements
