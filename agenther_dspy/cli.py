"""The `agenther-dspy` command.

Exit codes: 0 every input record was processed; 1 some records were invalid or failed with
an error (each is reported with its file, line and reason); 2 the command could not run
(bad flags, unreadable input, unusable model).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from agenther_dspy.formats import InputError, read_trajectories
from agenther_dspy.schema import OutputFormat

EXIT_OK, EXIT_SOME_INVALID, EXIT_FATAL = 0, 1, 2
TABLE_ROWS = 50

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn failed agent runs into training data by hindsight relabeling.",
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(EXIT_FATAL)


ModelOpt = Annotated[
    str,
    typer.Option(
        "-m",
        "--model",
        help="local, local:<name>, local:/path.gguf, or a LiteLLM/DSPy model string",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", help="OpenAI-compatible server, e.g. http://host:8000/v1"),
]
KeyEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key-env",
        help="name of the environment variable holding the API key "
        "(default: the provider's usual one, e.g. OPENAI_API_KEY)",
    ),
]


@app.command()
def run(
    input_file: Annotated[Path, typer.Argument(help="AgentHER-format JSON array or JSON lines")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="training rows (JSONL)")
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("-f", "--format", help="kind of training rows")
    ] = OutputFormat.SFT,
    model: ModelOpt = "local",
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    judge_model: Annotated[
        str | None,
        typer.Option("--judge-model", help="a different model for the second judge"),
    ] = None,
    min_confidence: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="θ: both judges' confidence to accept")
    ] = 0.5,
    severity_threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="δ: skip runs with a lower severity weight")
    ] = 0.3,
    max_attempts: Annotated[int, typer.Option(min=1, help="K: relabeling attempts per run")] = 3,
    temperature: Annotated[
        float, typer.Option(min=0.0, max=2.0, help="temperature of the detect/extract stages")
    ] = 0.3,
    llm_detector: Annotated[
        bool, typer.Option("--llm-detector/--rule-detector", help="failure detection by LM")
    ] = False,
    llm_extractor: Annotated[
        bool, typer.Option("--llm-extractor/--rule-extractor", help="outcome extraction by LM")
    ] = True,
    concurrency: Annotated[int, typer.Option(min=1, help="trajectories in flight")] = 1,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="LM response cache (default: $AGENTHER_DSPY_HOME/lm-cache)"),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not cache LM calls")] = False,
) -> None:
    """Relabel the failed runs in INPUT_FILE and write the accepted ones as training rows."""
    from agenther_dspy.lm import LMConfigError, build_lm
    from agenther_dspy.lm.factory import configure_cache
    from agenther_dspy.modules.program import HindsightRelabeler
    from agenther_dspy.runner import run_batch

    output = output or Path("outputs") / f"augmented_{output_format.value}.jsonl"
    try:
        configure_cache(cache_dir, enabled=not no_cache)
        records = read_trajectories(input_file)
        lm = build_lm(model, base_url=base_url, api_key_env=api_key_env, temperature=temperature)
        judge_lm = None
        if judge_model:
            judge_base = base_url if not judge_model.startswith("local") else None
            judge_lm = build_lm(judge_model, base_url=judge_base, api_key_env=api_key_env)
        program = HindsightRelabeler(
            min_confidence=min_confidence,
            severity_threshold=severity_threshold,
            max_attempts=max_attempts,
            llm_detector=llm_detector,
            llm_extractor=llm_extractor,
            judge_lm=judge_lm,
        )
    except (InputError, LMConfigError, ValueError) as error:
        raise fail(str(error)) from None

    results = []
    with Progress(
        TextColumn("[bold]relabeling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as progress:
        task = progress.add_task("run", total=None, counts="")

        def on_result(result) -> None:
            results.append(result)
            if result.status == "invalid":
                err_console.print(
                    f"[yellow]invalid[/yellow] {result.file}:{result.line}: {result.reason}"
                )
            progress.update(task, advance=1, counts=_counts_text(results))

        try:
            summary = run_batch(
                records,
                program,
                output_path=output,
                output_format=output_format,
                lm=lm,
                concurrency=concurrency,
                on_result=on_result,
            )
        except InputError as error:
            raise fail(str(error)) from None

    _print_results(results)
    console.print(
        f"{summary.total} records: {_counts_text(results)}. "
        f"Wrote {summary.rows_written} {output_format.value} rows to {output}"
    )
    bad = summary.counts["invalid"] + summary.counts["error"]
    raise typer.Exit(EXIT_SOME_INVALID if bad else EXIT_OK)


@app.command()
def validate(
    input_file: Annotated[Path, typer.Argument(help="AgentHER-format JSON array or JSON lines")],
) -> None:
    """Check every record of INPUT_FILE against the input schema; report each defect."""
    valid = invalid = 0
    try:
        for record in read_trajectories(input_file):
            if hasattr(record, "trajectory"):
                valid += 1
            else:
                invalid += 1
                console.print(f"[red]✗[/red] {record}", highlight=False)
    except InputError as error:
        raise fail(str(error)) from None
    if invalid:
        console.print(f"{invalid} invalid, {valid} valid records in {input_file}")
        raise typer.Exit(EXIT_SOME_INVALID)
    console.print(f"[green]✓[/green] {valid} valid records in {input_file}")


def _counts_text(results) -> str:
    order = ("accepted", "rejected", "skipped", "error", "invalid")
    counts = {status: 0 for status in order}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n)


def _print_results(results) -> None:
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
