"""Scheduling a batch: worker threads, the writer that keeps input order, and interrupts."""

from __future__ import annotations

import contextlib
import hashlib
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import dspy

from agenther_dspy.execution import short_error
from agenther_dspy.formats import InvalidRecord, Record
from agenther_dspy.runner.files import (
    BatchFiles,
    ResumeState,
    default_results_path,
    recover,
)
from agenther_dspy.runner.record import (
    STATUSES,
    TrajectoryResult,
    duplicate_result,
    invalid_result,
    process_record,
)
from agenther_dspy.schema import OutputFormat

IN_FLIGHT_PER_WORKER = 2
# Finished results wait for earlier ones to keep the files in input order; past this many
# unwritten records, no new record starts until the oldest one is done.
REORDER_WINDOW_PER_WORKER = 16
MIN_REORDER_WINDOW = 256
POLL_SECONDS = 0.1


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
    # The fields reported to MLflow under their own names (see `metrics`).
    COUNTED: ClassVar[tuple[str, ...]] = (
        "rows_written", "rows_total", "lm_calls", "prompt_tokens", "completion_tokens", "seconds"
    )  # fmt: skip

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

    def metrics(self) -> dict[str, float]:
        """This run's figures for MLflow; a resumed batch also reports what was done earlier."""
        metrics: dict[str, float] = {s: float(self.all_counts.get(s, 0)) for s in STATUSES}
        metrics.update({name: float(getattr(self, name)) for name in self.COUNTED})
        metrics.update(
            records=self.total,
            processed_this_run=self.processed,
            interrupted=float(self.interrupted),
        )
        return metrics


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
                    short_error(error),
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


class InOrder:
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


class Interrupts:
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

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def plan(
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


@dataclass
class OpenBatch:
    """A batch whose files are locked, recovered and open: what is already done, the
    summary so far, and `write`, the one way a result reaches the files."""

    state: ResumeState
    summary: BatchSummary
    write: Callable[[TrajectoryResult], None]


@contextlib.contextmanager
def open_batch(
    output_path: str | Path,
    results_path: str | Path | None = None,
    *,
    output_format: OutputFormat | str = OutputFormat.SFT,
    retry_errors: bool = False,
    overwrite: bool = False,
    on_start: Callable[[ResumeState], None] | None = None,
    on_result: Callable[[TrajectoryResult], None] | None = None,
) -> Iterator[OpenBatch]:
    """Lock the two files, recover them, open them for appending, and count what is
    written; whatever runs the records (threads here, Ray actors in `ray_batch`) writes
    through this, so resume, exactly-once rows and the counts are the same for all."""
    output_path = Path(output_path)
    results_path = Path(results_path) if results_path else default_results_path(output_path)
    started = time.perf_counter()
    # Lock before recovery: recovery rewrites the files another run may be appending to.
    files = BatchFiles(ResumeState(results_path, output_path))
    files.acquire()
    try:
        state = recover(
            output_path,
            results_path,
            output_format=OutputFormat(output_format),
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

        yield OpenBatch(state, summary, write)
    finally:
        files.close()
    summary.seconds = time.perf_counter() - started


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
    with open_batch(
        output_path,
        results_path,
        output_format=output_format,
        retry_errors=retry_errors,
        overwrite=overwrite,
        on_start=on_start,
        on_result=on_result,
    ) as batch:
        settings = dspy.settings.copy()

        def run_one(record: Record) -> TrajectoryResult:
            return process_record(
                program,
                record,
                lm,
                output_format,
                settings=settings,
                keep_history=keep_history,
            )

        _schedule(records, batch, run_one, concurrency, on_interrupt)
    return batch.summary


def _schedule(
    records: Iterable[Record | InvalidRecord],
    batch: OpenBatch,
    run_one: Callable[[Record], TrajectoryResult],
    concurrency: int,
    on_interrupt: Callable[[], None] | None,
) -> None:
    """Run the pending records on `concurrency` threads and write them in input order."""
    summary, write = batch.summary, batch.write
    workers = _Workers(concurrency, run_one)
    order = InOrder(write)
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

    with Interrupts(on_interrupt) as interrupts:
        try:
            for item in plan(records, batch.state.done):
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
