"""Progress of a batch: counts, rate and ETA while it runs, and the notes a person watching
it needs (what recovery repaired, each invalid record, how to stop)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from agenther_dspy.runner.files import ResumeState
from agenther_dspy.runner.record import STATUSES, TrajectoryResult


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


class BatchProgress:
    """A rich progress bar with accepted / rejected / error counts, rate and ETA on a
    terminal; elsewhere (a log file, CI) one plain line every `log_every` seconds. `run`,
    `evaluate` and `compile` all show their progress with it, each under its own `label`.

    Its `start`, `update` and `interrupted` are `run_batch`'s callbacks; `shown` keeps the
    first `keep` results for the table printed at the end (the rest are in the results file).
    """

    def __init__(
        self,
        console: Any,
        *,
        total: int | None,
        log_every: float = 60.0,
        keep: int = 50,
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
        self.keep = keep
        self.label = label
        self.shown: list[TrajectoryResult] = []
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
        for note in state.repairs:
            self.console.print(f"[yellow]resume:[/yellow] {note}", highlight=False)
        if state.done:
            self.console.print(
                f"resuming: {len(state.done)} records already done in {state.results_path}",
                highlight=False,
            )
        self.counts = state.earlier
        self.done = len(state.done)
        self.progress.update(self.task, completed=self.done, counts=counts_text(self.counts))

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.session / elapsed if elapsed > 0 else 0.0

    def interrupted(self) -> None:
        self.console.print(
            "stopping: finishing the trajectories in flight (Ctrl-C again to stop now)"
        )

    def update(self, result: Any = None) -> None:
        """One more item done; a result's `status` is counted (an LM call has none)."""
        status = getattr(result, "status", None)
        if status is not None:
            if len(self.shown) < self.keep:
                self.shown.append(result)
            if status == "invalid":
                self.console.print(
                    f"[yellow]invalid[/yellow] {result.file}:{result.line}: {result.reason}"
                )
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
    if rate <= 0:
        return ""
    return f"{rate:.1f}/s" if rate >= 1 else f"{1 / rate:.0f} s each"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
