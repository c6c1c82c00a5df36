"""Recovery and the two output files: what makes a results line the commit mark of its
trajectory, and what puts the files back in that state after any kind of stop."""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from agenther_dspy.augment import export_row
from agenther_dspy.runner.record import TrajectoryResult
from agenther_dspy.schema import OutputFormat


class ResumeError(Exception):
    """The output files cannot be resumed as they are; the message says what to do."""


@dataclass
class ResumeState:
    """What the results file already holds, after recovery."""

    results_path: Path
    output_path: Path
    done: dict[str, str] = field(default_factory=dict)  # key → status
    rows: int = 0
    repairs: list[str] = field(default_factory=list)

    @property
    def earlier(self) -> Counter:
        return Counter(self.done.values())


def default_results_path(output_path: str | Path) -> Path:
    """`out.jsonl` → `out.results.jsonl`, beside the training rows."""
    output_path = Path(output_path)
    return output_path.with_name(f"{output_path.stem or output_path.name}.results.jsonl")


def _lines(path: Path) -> Iterator[tuple[bytes, Any]]:
    """(raw line, parsed JSON or None) for each line; a last line without its newline is
    half-written and comes back unparsed."""
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                yield raw, None
                return
            try:
                yield raw, json.loads(raw)
            except ValueError:
                yield raw, None


def _rewrite(path: Path, keep: Callable[[int, Any], bool]) -> None:
    """Rewrite `path` with the lines `keep(number, parsed)` accepts, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        for number, (raw, parsed) in enumerate(_lines(path), 1):
            if keep(number, parsed):
                out.write(raw)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def recover(
    output_path: str | Path,
    results_path: str | Path | None = None,
    *,
    output_format: OutputFormat | str = OutputFormat.SFT,
    retry_errors: bool = False,
    overwrite: bool = False,
) -> ResumeState:
    """Make the two files consistent again and say what is already done.

    Rules, in order: a results line that is half-written or not JSON is dropped; a second
    results line with the same key is dropped; with `retry_errors`, `error` lines are
    dropped; an `accepted` line whose training row is missing is dropped; a training row
    that is half-written, repeated, or has no `accepted` results line is dropped.
    """
    output_path = Path(output_path)
    results_path = Path(results_path) if results_path else default_results_path(output_path)
    output_format = OutputFormat(output_format)
    if results_path.resolve() == output_path.resolve():
        raise ResumeError(f"--results {results_path} is the training-rows file itself")
    state = ResumeState(results_path, output_path)
    if overwrite:
        for path in (output_path, results_path):
            path.unlink(missing_ok=True)
        return state
    has_rows = output_path.exists() and output_path.stat().st_size > 0
    if has_rows and not results_path.exists():
        raise ResumeError(
            f"{output_path} already holds rows but has no results file ({results_path}), so "
            "it cannot be resumed: choose another -o, or pass --overwrite to replace it"
        )
    if not results_path.exists():
        return state

    # Pass 1: the results file. Keep the first well-formed line per key.
    drop_results: set[int] = set()
    accepted: dict[str, int] = {}  # trajectory_id → results line number
    torn = bad = repeated = retried = 0
    for number, (raw, parsed) in enumerate(_lines(results_path), 1):
        if not isinstance(parsed, dict) or "key" not in parsed or "status" not in parsed:
            drop_results.add(number)
            if raw.endswith(b"\n"):
                bad += 1
            else:
                torn += 1
            continue
        key, status = str(parsed["key"]), str(parsed["status"])
        if key in state.done:
            drop_results.add(number)
            repeated += 1
        elif retry_errors and status == "error":
            drop_results.add(number)
            retried += 1
        else:
            state.done[key] = status
            if status == "accepted":
                accepted[str(parsed.get("trajectory_id") or key)] = number

    # Pass 2: the training rows. Keep one row per accepted trajectory.
    drop_rows: set[int] = set()
    with_row: set[str] = set()
    row_torn = orphans = 0
    if output_path.exists():
        for number, (_raw, parsed) in enumerate(_lines(output_path), 1):
            tid = parsed.get("source_trajectory_id") if isinstance(parsed, dict) else None
            if tid is None:
                drop_rows.add(number)
                row_torn += 1
                continue
            # trl rows carry no format field; their columns already differ from the others'
            if parsed.get("format", output_format.value) != output_format.value:
                raise ResumeError(
                    f"{output_path} holds {parsed.get('format')} rows and this run writes "
                    f"{output_format.value} rows: choose another -o, or pass --overwrite"
                )
            if tid not in accepted or tid in with_row:
                drop_rows.add(number)
                orphans += 1
            else:
                with_row.add(tid)
    missing = {tid: number for tid, number in accepted.items() if tid not in with_row}
    for tid, number in missing.items():
        drop_results.add(number)
        state.done.pop(tid, None)

    if drop_results:
        _rewrite(results_path, lambda number, _: number not in drop_results)
    if drop_rows:
        _rewrite(output_path, lambda number, _: number not in drop_rows)
    state.rows = len(with_row)
    notes = [
        (torn, f"dropped a half-written last line of {results_path}"),
        (bad, f"dropped {bad} unreadable line(s) of {results_path}"),
        (repeated, f"dropped {repeated} repeated results line(s)"),
        (retried, f"will retry {retried} trajectories that ended in an error"),
        (row_torn, f"dropped {row_torn} half-written training row(s)"),
        (orphans, f"dropped {orphans} training row(s) whose results line was never written"),
        (len(missing), f"will redo {len(missing)} accepted trajectories whose row is missing"),
    ]
    state.repairs = [note for count, note in notes if count]
    return state


class BatchFiles:
    """The two append-only files, a lock so that two runs never write them at once, and
    the write order that makes a results line the commit mark of its trajectory."""

    def __init__(self, state: ResumeState) -> None:
        self.state = state
        self.lock_path = state.results_path.with_name(state.results_path.name + ".lock")
        self._lock: IO[bytes] | None = None
        self.rows: IO[str] | None = None
        self.results: IO[str] | None = None

    def acquire(self) -> None:
        self.state.results_path.parent.mkdir(parents=True, exist_ok=True)
        self.state.output_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = self.lock_path.open("ab")
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise ResumeError(
                f"another run is writing {self.state.results_path} "
                f"(lock {self.lock_path}); wait for it or stop it first"
            ) from None

    def open(self) -> None:
        self.rows = self.state.output_path.open("a", encoding="utf-8")
        self.results = self.state.results_path.open("a", encoding="utf-8")

    def write(self, result: TrajectoryResult) -> bool:
        """The training row first, then the results line; True when a row was written."""
        assert self.rows is not None and self.results is not None
        wrote_row = False
        if result.sample is not None:
            self.rows.write(json.dumps(export_row(result.sample), ensure_ascii=False))
            self.rows.write("\n")
            self.rows.flush()
            wrote_row = True
        self.results.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
        self.results.flush()
        return wrote_row

    def close(self) -> None:
        for handle in (self.rows, self.results):
            if handle is not None and not handle.closed:
                handle.flush()
                with contextlib.suppress(OSError):
                    os.fsync(handle.fileno())
                handle.close()
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self.lock_path.unlink()
            self._lock.close()
            self._lock = None
