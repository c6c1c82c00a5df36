"""Batch execution: every input record in, one results line per record out, accepted
training rows appended as records finish, and a batch that can be stopped and resumed at
any point without losing or repeating a row.

Two files are written, both append-only and both written only by the calling thread:

- the training rows (`output_path`), one JSON line per accepted trajectory;
- the results file (`results_path`), one JSON line per input record: its status (accepted /
  rejected / skipped / error / invalid), the stage it reached, the reason, the confidences,
  and the LM calls and tokens it cost.

For each finished trajectory the training row is written and flushed *before* its results
line, so a results line is the commit mark of its trajectory. `recover()` restores that
invariant after any kind of stop (Ctrl-C, `kill -9`, a full disk): it drops a half-written
last line of either file, drops training rows whose trajectory has no `accepted` results
line, and drops `accepted` results lines whose training row is missing (those trajectories
run again, mostly from the LM cache). What remains in the results file is what is done.

Records are keyed by `trajectory_id` (a content hash when the input has none). A second
record with an id already seen in the same input is not processed: it gets its own results
line, status `skipped`, reason `duplicate trajectory_id: ...`, keyed by its position.
Invalid records are keyed by their position too (`@line:N`, or `@item:N` in a JSON array).

Work goes to `concurrency` daemon threads with at most `2 × concurrency` records running.
Both files are written in input order, so the same input gives the same files whatever the
thread timing: a finished record waits for the ones before it, and no new record starts
while `max(256, 16 × concurrency)` are unwritten. So memory stays flat however long the
input is, and a hard kill loses at most that many finished records (they run again on
resume, answered from the LM cache when it is on). Each thread runs the program inside its
own `dspy.context`: the LM, and a DSPy usage tracker per record that counts its LM calls and
tokens (DSPy reports usage to the tracker of the context the call ran in, so the counts
are per record whatever the number of threads). Nothing here calls `dspy.configure`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import dspy
from dspy.utils.exceptions import AdapterParseError
from dspy.utils.usage_tracker import UsageTracker
from pydantic import ValidationError

from agenther_dspy.augment import export_row, sample_from_prediction
from agenther_dspy.formats import InvalidRecord, Record
from agenther_dspy.schema import AugmentedSample, OutputFormat

STATUSES = ("accepted", "rejected", "skipped", "error", "invalid")
# An answer that does not parse, or whose values break the stage's types, is a property of
# the trajectory and the model, not a transient fault: the trajectory is rejected. (The
# relabeler already spends one of its attempts on each such answer; detect and extract get
# the adapter's one JSON fallback call.)
ANSWER_ERRORS = (AdapterParseError, ValidationError)
IN_FLIGHT_PER_WORKER = 2
# Finished results wait for earlier ones to keep the files in input order; past this many
# unwritten records, no new record starts until the oldest one is done.
REORDER_WINDOW_PER_WORKER = 16
MIN_REORDER_WINDOW = 256
POLL_SECONDS = 0.1


class ResumeError(Exception):
    """The output files cannot be resumed as they are; the message says what to do."""


@dataclass
class TrajectoryResult:
    """What happened to one input record: one line of the results file."""

    key: str
    trajectory_id: str
    status: str  # accepted | rejected | skipped | error | invalid
    stage: str
    reason: str
    file: str
    line: int
    index: int | None = None
    confidence: float = 0.0
    relabel_confidence: float | None = None
    judge_confidence: float | None = None
    single_judge: bool = False
    severity_weight: float | None = None
    failure_type: str | None = None
    attempts: int = 0
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


@dataclass
class BatchSummary:
    results_path: Path
    output_path: Path
    counts: Counter = field(default_factory=Counter)  # this run
    earlier: Counter = field(default_factory=Counter)  # from the results file at the start
    rows_written: int = 0
    rows_total: int = 0
    lm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    interrupted: bool = False
    abandoned: int = 0  # in flight when a second interrupt stopped the wait
    seconds: float = 0.0

    @property
    def all_counts(self) -> Counter:
        return self.counts + self.earlier

    @property
    def total(self) -> int:
        return sum(self.all_counts.values())

    @property
    def processed(self) -> int:
        return sum(self.counts.values())

    @property
    def bad(self) -> int:
        counts = self.all_counts
        return counts["invalid"] + counts["error"]


def default_results_path(output_path: str | Path) -> Path:
    """`out.jsonl` → `out.results.jsonl`, beside the training rows."""
    output_path = Path(output_path)
    return output_path.with_name(f"{output_path.stem or output_path.name}.results.jsonl")


def counts_text(counts: Counter) -> str:
    parts = [f"{counts[status]} {status}" for status in STATUSES if counts[status]]
    parts += [f"{n} {status}" for status, n in counts.items() if status not in STATUSES and n]
    return ", ".join(parts)


def count_input_records(path: str | Path) -> int | None:
    """Non-blank lines of a JSON-lines file (cheap, one pass), or None for other layouts."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
            if not head.startswith(b"{"):
                return None
            handle.seek(0)
            first = next((line for line in handle if line.strip()), b"")
            try:
                json.loads(first)
            except ValueError:
                return None  # one pretty-printed object
            handle.seek(0)
            return sum(1 for line in handle if line.strip())
    except OSError:
        return None


# ---------------------------------------------------------------------------- per record


class _RecordUsage(UsageTracker):
    """DSPy's usage tracker for one record, also counting the LM calls it sees: DSPy reports
    each answer that came from the LM (not from its cache) to the tracker of the context the
    call ran in, so a tracker per record in the record's own thread needs no lock."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def add_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        self.calls += 1
        super().add_usage(lm, usage_entry)


_STAGE_NAMES = {
    "detector": "detect",
    "extractor": "extract",
    "relabeler": "relabel",
    "relabeler.relabel": "relabel",
    "relabeler.judge": "judge",
}


def stage_map(program: dspy.Module) -> dict[int, str]:
    """id(sub-module) → the stage it belongs to, from the program's attribute names."""
    stages: dict[int, str] = {}
    for name, module in program.named_sub_modules():
        name = name.removeprefix("self").lstrip(".")
        if name in _STAGE_NAMES:
            stages[id(module)] = _STAGE_NAMES[name]
        elif name and name.split(".")[0] in _STAGE_NAMES:
            stages.setdefault(id(module), _STAGE_NAMES[name.split(".")[0]])
    return stages


def stage_of_error(error: BaseException, stage_of: dict[int, str]) -> str:
    """The innermost stage on the error's traceback: where the record stopped."""
    stage = ""
    frame = error.__traceback__
    while frame is not None:
        owner = frame.tb_frame.f_locals.get("self")
        if owner is not None and id(owner) in stage_of:
            stage = stage_of[id(owner)]
        frame = frame.tb_next
    return stage


def _tokens(usage: dict[str, dict[str, Any]]) -> tuple[int, int]:
    prompt = completion = 0
    for entry in usage.values():
        prompt += int(entry.get("prompt_tokens") or entry.get("input_tokens") or 0)
        completion += int(entry.get("completion_tokens") or entry.get("output_tokens") or 0)
    return prompt, completion


def _short(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"{type(error).__name__}: {text}"


def process_record(
    program: dspy.Module,
    record: Record,
    lm: dspy.LM | None,
    output_format: OutputFormat | str,
    *,
    settings: dict[str, Any] | None = None,
    stage_of: dict[int, str] | None = None,
    keep_history: bool = False,
) -> TrajectoryResult:
    """Run the program on one record in the calling thread; every failure becomes a result.

    `settings` are the caller's DSPy settings (a worker thread does not inherit the
    `dspy.context` of the thread that started it); the LM, a fresh trace and a usage
    tracker of its own are set per record on top of them. (Counting with a DSPy callback
    would work too, but any callback makes DSPy bind the arguments of every module, adapter
    and LM call with `inspect`: about 1.5 ms of CPU per trajectory here.)
    """
    trajectory = record.trajectory
    usage = _RecordUsage()
    overrides = dict(settings if settings is not None else dspy.settings.copy())
    overrides["usage_tracker"] = usage
    overrides["trace"] = []  # per record, instead of DSPy's process-wide list
    if lm is not None:
        overrides["lm"] = lm
    if not keep_history:
        overrides["disable_history"] = True  # DSPy keeps 10,000 calls per LM otherwise
    base = {
        "key": trajectory.trajectory_id,
        "trajectory_id": trajectory.trajectory_id,
        "file": record.file,
        "line": record.line,
        "index": record.index,
    }
    started = time.perf_counter()
    prediction = error = None
    with dspy.context(**overrides):
        try:
            prediction = program(trajectory=trajectory)
        except Exception as caught:  # an LM failure after its retries, or a bad answer
            error = caught
    prompt_tokens, completion_tokens = _tokens(usage.get_total_tokens())
    cost = {
        "lm_calls": usage.calls,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "seconds": round(time.perf_counter() - started, 4),
    }
    if error is not None:
        status = "rejected" if isinstance(error, ANSWER_ERRORS) else "error"
        reason = _short(error)
        if status == "rejected":
            reason = f"unparseable answer: {reason}"
        stage = stage_of_error(error, stage_of or {})
        return TrajectoryResult(**base, status=status, stage=stage, reason=reason, **cost)
    relabel = getattr(prediction, "relabel", None)
    verdict = getattr(prediction, "verdict", None)
    analysis = getattr(prediction, "analysis", None)
    return TrajectoryResult(
        **base,
        status=prediction.status,
        stage=prediction.stage,
        reason=prediction.reason,
        confidence=round(float(prediction.confidence), 4),
        relabel_confidence=relabel.confidence if relabel is not None else None,
        judge_confidence=verdict.confidence if verdict is not None else None,
        single_judge=bool(prediction.single_judge),
        severity_weight=analysis.severity_weight if analysis is not None else None,
        failure_type=analysis.failure_type if analysis is not None else None,
        attempts=len(getattr(prediction, "attempts", None) or []),
        sample=sample_from_prediction(trajectory, prediction, output_format),
        **cost,
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


# ---------------------------------------------------------------------------- recovery


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


# ---------------------------------------------------------------------------- writing


class _BatchFiles:
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


# ---------------------------------------------------------------------------- workers


class _Workers:
    """Daemon threads running `fn` on submitted records. Daemon, so that an abandoned
    batch (a second Ctrl-C) does not keep the process alive until its LM calls return."""

    def __init__(self, count: int, fn: Callable[[Record], TrajectoryResult]) -> None:
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()  # (number, record) or None
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        self.fn = fn
        self.threads = [
            threading.Thread(target=self._loop, name=f"relabel-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def _loop(self) -> None:
        while True:
            task = self.tasks.get()
            if task is None:
                return
            number, record = task
            try:
                result = self.fn(record)
            except BaseException as error:  # process_record catches Exception; be sure
                result = TrajectoryResult(
                    record.trajectory.trajectory_id,
                    record.trajectory.trajectory_id,
                    "error",
                    "",
                    _short(error),
                    record.file,
                    record.line,
                    record.index,
                )
            self.done.put((number, result))

    def submit(self, number: int, record: Record) -> None:
        self.tasks.put((number, record))

    def stop(self) -> None:
        """Drop the records not yet started, then let each thread end after its current one."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.tasks.get_nowait()
        for _ in self.threads:
            self.tasks.put(None)


class _InOrder:
    """Writes results in input order: a finished result waits until every earlier one is
    written. Bounded by the caller, which stops handing out numbers while too many wait."""

    def __init__(self, write: Callable[[TrajectoryResult], None]) -> None:
        self.write = write
        self.waiting: dict[int, TrajectoryResult] = {}
        self.issued = 0
        self.written = 0

    def number(self) -> int:
        self.issued += 1
        return self.issued - 1

    @property
    def unwritten(self) -> int:
        return self.issued - self.written

    def deliver(self, number: int, result: TrajectoryResult) -> None:
        self.waiting[number] = result
        while self.written in self.waiting:
            result = self.waiting.pop(self.written)
            self.written += 1
            self.write(result)


class _Interrupts:
    """First SIGINT/SIGTERM: stop taking new records, finish the ones in flight. Second:
    stop waiting. Installed only in the main thread (the only one Python signals)."""

    def __init__(self, on_first: Callable[[], None] | None) -> None:
        self.stop = threading.Event()
        self.abandon = threading.Event()
        self.on_first = on_first
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.stop.is_set():
            self.stop.set()
            if self.on_first is not None:
                self.on_first()
        else:
            self.abandon.set()

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _plan(
    records: Iterable[Record | InvalidRecord], done: dict[str, str]
) -> Iterator[Record | TrajectoryResult]:
    """Records to run and results to write at once (invalid, duplicate), skipping what the
    results file already holds. Duplicates are decided by input order, the same on every
    run, so a resumed run makes the same decisions."""
    # One entry per trajectory, the only state that grows with the input: a 12-byte digest
    # of the id (ids can be long) → where it was first seen (a line, or an array item).
    first_seen: dict[bytes, int] = {}
    for record in records:
        if isinstance(record, InvalidRecord):
            result = invalid_result(record)
            if result.key not in done:
                yield result
            continue
        tid = record.trajectory.trajectory_id
        here = record.line if record.index is None else record.index
        first = first_seen.setdefault(hashlib.blake2b(tid.encode(), digest_size=12).digest(), here)
        if first != here:
            result = duplicate_result(record, first)
            if result.key not in done:
                yield result
        elif tid not in done:
            yield record


def run_batch(
    records: Iterable[Record | InvalidRecord],
    program: dspy.Module,
    *,
    output_path: str | Path,
    results_path: str | Path | None = None,
    output_format: OutputFormat | str = OutputFormat.SFT,
    lm: dspy.LM | None = None,
    concurrency: int = 1,
    retry_errors: bool = False,
    overwrite: bool = False,
    keep_history: bool = False,
    on_start: Callable[[ResumeState], None] | None = None,
    on_result: Callable[[TrajectoryResult], None] | None = None,
    on_interrupt: Callable[[], None] | None = None,
) -> BatchSummary:
    """Process every record not already in the results file; resume-safe at any point.

    `on_start` sees the recovered state before the first record; `on_result` each result
    right after its lines are written; `on_interrupt` the first Ctrl-C / SIGTERM, after
    which the records in flight are finished and written and the batch returns with
    `interrupted=True` (a second one stops waiting for them).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    output_format = OutputFormat(output_format)
    output_path = Path(output_path)
    results_path = Path(results_path) if results_path else default_results_path(output_path)
    started = time.perf_counter()
    # Lock before recovery: recovery rewrites the files another run may be appending to.
    files = _BatchFiles(ResumeState(results_path, output_path))
    files.acquire()
    try:
        state = recover(
            output_path,
            results_path,
            output_format=output_format,
            retry_errors=retry_errors,
            overwrite=overwrite,
        )
        files.state = state
        files.open()
        summary = BatchSummary(
            results_path, output_path, earlier=state.earlier, rows_total=state.rows
        )
        if on_start is not None:
            on_start(state)
        settings = dspy.settings.copy()
        stage_of = stage_map(program)

        def run_one(record: Record) -> TrajectoryResult:
            return process_record(
                program,
                record,
                lm,
                output_format,
                settings=settings,
                stage_of=stage_of,
                keep_history=keep_history,
            )

        def write(result: TrajectoryResult) -> None:
            if files.write(result):
                summary.rows_written += 1
                summary.rows_total += 1
            summary.counts[result.status] += 1
            summary.lm_calls += result.lm_calls
            summary.prompt_tokens += result.prompt_tokens
            summary.completion_tokens += result.completion_tokens
            if on_result is not None:
                on_result(result)

        workers = _Workers(concurrency, run_one)
        order = _InOrder(write)
        running = 0
        most_running = IN_FLIGHT_PER_WORKER * concurrency
        most_unwritten = max(MIN_REORDER_WINDOW, REORDER_WINDOW_PER_WORKER * concurrency)

        def receive(wait: bool) -> bool:
            nonlocal running
            try:
                if wait:
                    number, result = workers.done.get(timeout=POLL_SECONDS)
                else:
                    number, result = workers.done.get_nowait()
            except queue.Empty:
                return False
            running -= 1
            order.deliver(number, result)
            return True

        with _Interrupts(on_interrupt) as interrupts:
            try:
                for item in _plan(records, state.done):
                    if interrupts.stop.is_set():
                        break
                    if isinstance(item, TrajectoryResult):
                        order.deliver(order.number(), item)
                        continue
                    while (
                        running >= most_running or order.unwritten >= most_unwritten
                    ) and not interrupts.abandon.is_set():
                        receive(wait=True)
                    if interrupts.abandon.is_set():
                        break
                    workers.submit(order.number(), item)
                    running += 1
                    while receive(wait=False):  # write whatever is ready, without waiting
                        pass
                while running and not interrupts.abandon.is_set():
                    receive(wait=True)
            finally:
                workers.stop()
            summary.interrupted = interrupts.stop.is_set()
            summary.abandoned = order.unwritten
    finally:
        files.close()
    summary.seconds = time.perf_counter() - started
    return summary


# ---------------------------------------------------------------------------- progress


class BatchProgress:
    """A rich progress bar with accepted / rejected / error counts, rate and ETA on a
    terminal; elsewhere (a log file, CI) one plain line every `log_every` seconds. `run`,
    `evaluate` and `compile` all show their progress with it, each under its own `label`."""

    def __init__(
        self,
        console: Any,
        *,
        total: int | None,
        log_every: float = 60.0,
        label: str = "relabeling",
    ) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console = console
        self.total = total
        self.log_every = log_every
        self.counts: Counter = Counter()
        self.done = 0
        self.started = time.monotonic()
        self.last_log = self.started
        self.session = 0
        self.label = label
        self.live = bool(console.is_terminal)
        self.progress = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not self.live,
        )
        self.task = self.progress.add_task("run", total=total, counts="", rate="")

    def __enter__(self) -> BatchProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, state: ResumeState) -> None:
        self.counts = state.earlier
        self.done = len(state.done)
        self.progress.update(self.task, completed=self.done, counts=counts_text(self.counts))

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.session / elapsed if elapsed > 0 else 0.0

    def update(self, result: Any = None) -> None:
        """One more item done; a result's `status` is counted (an LM call has none)."""
        status = getattr(result, "status", None)
        if status:
            self.counts[status] += 1
        self.done += 1
        self.session += 1
        rate = self.rate()
        self.progress.update(
            self.task, advance=1, counts=counts_text(self.counts), rate=_rate_text(rate)
        )
        now = time.monotonic()
        if not self.live and now - self.last_log >= self.log_every:
            self.last_log = now
            of = f"/{self.total}" if self.total else ""
            eta = ""
            if self.total and rate > 0:
                eta = f", ETA {_duration((self.total - self.done) / rate)}"
            counts = f" ({counts_text(self.counts)})" if self.counts else ""
            self.console.print(
                f"{self.label}: {self.done}{of}{counts}, {_rate_text(rate)}{eta}",
                highlight=False,
            )


def _rate_text(rate: float) -> str:
    """Items per second, or seconds per item when an item takes longer than a second."""
    if rate >= 1 or rate <= 0:
        return f"{rate:.1f}/s"
    return f"{1 / rate:.0f} s each"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
