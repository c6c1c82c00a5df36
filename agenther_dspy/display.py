"""What the command prints: its consoles, exit codes, progress bars and result tables."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from agenther_dspy.eval import EvalReport
    from agenther_dspy.optimizers.compile import Plan
    from agenther_dspy.optimizers.workflow import CompileReport
    from agenther_dspy.runner import BatchSummary, TrajectoryResult

EXIT_OK, EXIT_SOME_INVALID, EXIT_FATAL = 0, 1, 2
TABLE_ROWS = 50  # results shown in a table; the rest are in the results file or report

console = Console()
err_console = Console(stderr=True)


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[..., None]]:
    """`run`'s progress display on stderr (a bar with counts and ETA on a terminal, a line a
    minute elsewhere); yields the function that advances it by one row or LM call."""
    import threading

    from agenther_dspy.runner import BatchProgress

    lock = threading.Lock()  # rows may come from evaluate's threads

    with BatchProgress(err_console, total=total, label=label) as progress:

        def advance(item: object = None) -> None:
            with lock:
                progress.update(item)

        yield advance


def print_invalid(records: list[Any]) -> None:
    """Each invalid record of a labeled set, with its file, line and reason."""
    for bad in records:
        err_console.print(f"[yellow]invalid[/yellow] {bad}", highlight=False)


def print_results(results: list[TrajectoryResult]) -> None:
    table = Table(title="Results", show_lines=False)
    table.add_column("trajectory")
    table.add_column("status")
    table.add_column("stage")
    table.add_column("reason", overflow="fold")
    colours = {"accepted": "green", "rejected": "yellow", "skipped": "dim", "error": "red"}
    for result in results[:TABLE_ROWS]:
        colour = colours.get(result.status, "red")
        table.add_row(
            result.trajectory_id or f"{result.file}:{result.line}",
            f"[{colour}]{result.status}[/{colour}]",
            result.stage,
            result.reason,
        )
    console.print(table)
    if len(results) > TABLE_ROWS:
        console.print(f"… and {len(results) - TABLE_ROWS} more")


def print_run(summary: BatchSummary, shown: list[TrajectoryResult], output_format: str) -> None:
    """The first results, the counts, this run's cost and, after an interrupt, how to go on."""
    from agenther_dspy.runner import counts_text

    results_path, output = summary.results_path, summary.output_path
    if shown:
        print_results(shown)
    if summary.processed > len(shown):
        console.print(f"… and {summary.processed - len(shown)} more in {results_path}")
    earlier = sum(summary.earlier.values())
    console.print(
        f"{summary.total} records: {counts_text(summary.all_counts)}. "
        f"Wrote {summary.rows_written} {output_format} rows to {output}"
        + (f" ({summary.rows_total} in all; {earlier} records done earlier)" if earlier else ""),
        highlight=False,
    )
    rate = summary.processed / summary.seconds if summary.seconds else 0.0
    console.print(
        f"This run: {summary.processed} records in {summary.seconds:.1f} s ({rate:.2f}/s), "
        f"{summary.lm_calls} LM calls, {summary.prompt_tokens} prompt + "
        f"{summary.completion_tokens} completion tokens. Results: {results_path}",
        highlight=False,
    )
    if summary.interrupted:
        err_console.print(
            f"Interrupted: {summary.total} records are recorded in {results_path}"
            + (f", {summary.abandoned} in flight were dropped" if summary.abandoned else "")
            + ". Run the same command again to continue where it stopped.",
            highlight=False,
        )


def print_evaluation(result: EvalReport) -> None:
    """The first examples, the summary as a table, then the summary as JSON."""
    table = Table(title="Examples")
    for column in ("trajectory", "gold", "status", "score", "hindsight prompt / reason"):
        table.add_column(column, overflow="fold")
    for row in result.rows[:TABLE_ROWS]:
        table.add_row(
            row.trajectory_id[:40],
            "recoverable" if row.gold_recoverable else "not recoverable",
            row.status,
            f"{row.score:.2f}",
            row.hindsight_prompt or row.reason[:120],
        )
    console.print(table)
    summary = Table(title="Summary")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    for key, value in result.summary.items():
        summary.add_row(key, str(value))
    console.print(summary)
    console.print_json(json.dumps(result.summary))


def print_models(rows: list[dict[str, Any]], *, as_json: bool = False) -> None:
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="Embedded models (-m local:<name>)")
    for column in ("name", "size", "installed", "verified"):
        table.add_column(column)
    verified_text = {True: "yes", False: "no", None: "on first load"}
    for row in rows:
        name = f"{row['name']} (default)" if row["default"] else str(row["name"])
        installed = "yes" if row["installed"] else "no"
        table.add_row(name, f"{row['size_mb']} MB", installed, verified_text[row["verified"]])
    console.print(table)
    for row in rows:
        if not row["installed"]:
            console.print(f"To install {row['name']}: {row['install']}", soft_wrap=True)


def print_plan(plan: Plan, budget_means: str) -> None:
    """The optimizer's budget and the LM calls it is expected to cost, before it starts."""
    console.print(
        f"[bold]{plan.optimizer}[/bold], budget {plan.budget} ({budget_means}): "
        f"expected ≈ {plan.expected_lm_calls} LM calls = {plan.explanation}",
        highlight=False,
    )


def print_compile(done: CompileReport) -> None:
    before, after, gain = done.before.summary, done.after.summary, done.gain
    console.print(
        f"dev fidelity {before['fidelity']:.3f} {before['fidelity_ci95']} → "
        f"{after['fidelity']:.3f} {after['fidelity_ci95']}; paired gain "
        f"{gain['gain']:+.3f} {gain['gain_ci95']}"
        f" ({'beyond' if gain['beyond_noise'] else 'within'} noise); "
        f"{done.lm_calls} LM calls, {done.seconds:.0f} s to compile",
        highlight=False,
    )
    where = f"; MLflow run {done.run_id}" if done.run_id else ""
    console.print(f"Saved {done.output} and {done.sidecar.name}{where}")


def fail(message: str) -> typer.Exit:
    """The one line a command that cannot go on prints, and its exit (2)."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(EXIT_FATAL)


@contextmanager
def failing_on(*errors: type[Exception]) -> Iterator[None]:
    """Inside the block, any of `errors` ends the command: its message, through `fail`."""
    try:
        yield
    except errors as error:
        raise fail(str(error)) from None


def note(line: str) -> None:
    err_console.print(line, highlight=False)
