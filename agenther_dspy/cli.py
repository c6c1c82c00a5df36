"""The `agenther-dspy` command.

Exit codes: 0 every input record was processed; 1 some records were invalid or failed with
an error (each is reported with its file, line and reason); 2 the command could not run
(bad flags, unreadable input, unusable model).
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from dspy.utils.callback import BaseCallback
from rich.console import Console
from rich.table import Table

from agenther_dspy.formats import InputError, InputFormat, open_reader, read_trajectories
from agenther_dspy.modules.program import HindsightRelabeler
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
FallbackOpt = Annotated[
    bool,
    typer.Option(
        "--single-judge-fallback/--judge-required",
        help="accept a run no second judge accepted when its best attempt is confident enough"
        " (AgentHER), or require the judge; a compiled program brings its own rule",
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
    single_judge_fallback: FallbackOpt = True,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="trajectories in flight (default: 1 for the embedded local model, "
            "8 for a remote server)",
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="seconds per remote LM call before it is retried (default 120)"),
    ] = None,
    retries: Annotated[
        int,
        typer.Option(
            min=0,
            help="retries of an LM call after a rate limit, server error or timeout, "
            "with exponential backoff (1, 2, 4… s)",
        ),
    ] = 3,
    results_file: Annotated[
        Path | None,
        typer.Option(
            "--results",
            help="one line per input record: status, stage, reason, confidences, LM calls "
            "and tokens (default: beside OUTPUT, OUTPUT-STEM.results.jsonl)",
        ),
    ] = None,
    retry_errors: Annotated[
        bool,
        typer.Option("--retry-errors", help="run again the records whose results say error"),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="discard OUTPUT and its results file; start over"),
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="LM response cache (default: $AGENTHER_DSPY_HOME/lm-cache)"),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not cache LM calls")] = False,
    hf_dataset: Annotated[
        Path | None,
        typer.Option(help="also write all rows as a Hugging Face dataset (with a card) here"),
    ] = None,
    input_format: Annotated[
        InputFormat, typer.Option("--input-format", help="format of INPUT_FILE (default: detect)")
    ] = InputFormat.AUTO,
    program_file: Annotated[
        str | None,
        typer.Option("--program", help="compiled program: a file, models:/NAME/V or runs:/ID/P"),
    ] = None,
    uncompiled: Annotated[
        bool,
        typer.Option(
            "--uncompiled", help="do not use the compiled program shipped for the local model"
        ),
    ] = False,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default sqlite:///mlflow.db)")
    ] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="do not log to MLflow")] = False,
) -> None:
    """Relabel the failed runs in INPUT_FILE and write the accepted ones as training rows.

    Re-running the same command resumes: records already in the results file are skipped
    and nothing is written twice, after Ctrl-C or a killed process alike.
    """
    _check_program_flags(program_file, uncompiled)
    from agenther_dspy.lm import LMConfigError, build_lm, is_local
    from agenther_dspy.lm.factory import DEFAULT_TIMEOUT_S, configure_cache
    from agenther_dspy.runner import (
        BatchProgress,
        ResumeError,
        count_input_records,
        counts_text,
        default_results_path,
        run_batch,
    )

    if output_format is OutputFormat.OPENAI:
        # Its rows are exactly {"messages"}: nothing ties a row to its run, so a batch could
        # not resume without losing or repeating rows.
        raise fail(
            "-f openai rows carry no run id, so a batch could not resume safely: write -f trl-sft"
            " (the same messages plus weight and source_trajectory_id) and drop those columns"
        )
    output = output or Path("outputs") / f"augmented_{output_format.value}.jsonl"
    results_path = results_file or default_results_path(output)
    # The embedded model is compute-bound on this machine: more threads only split it.
    concurrency = concurrency or (1 if is_local(model) else 8)

    def timeout_for(spec: str) -> float | None:
        return None if is_local(spec) else timeout or DEFAULT_TIMEOUT_S

    try:
        if timeout is not None and all(is_local(m) for m in (model, judge_model) if m):
            raise LMConfigError("--timeout is for remote servers; the local model runs in-process")
        configure_cache(cache_dir, enabled=not no_cache)
        records = open_reader(input_file, input_format)
        lm = build_lm(
            model,
            base_url=base_url,
            api_key_env=api_key_env,
            temperature=temperature,
            num_retries=retries,
            timeout=timeout_for(model),
        )
        judge_lm = None
        if judge_model:
            judge_base = base_url if not is_local(judge_model) else None
            judge_lm = build_lm(
                judge_model,
                base_url=judge_base,
                api_key_env=api_key_env,
                num_retries=retries,
                timeout=timeout_for(judge_model),
            )
        program, program_file = _make_program(
            program_file,
            model=model,
            uncompiled=uncompiled,
            tracking_uri=tracking_uri,
            llm_detector=llm_detector,
            llm_extractor=llm_extractor,
            single_judge_fallback=single_judge_fallback,
            min_confidence=min_confidence,
            severity_threshold=severity_threshold,
            max_attempts=max_attempts,
            judge_lm=judge_lm,
        )
    except (InputError, LMConfigError, ValueError) as error:
        raise fail(str(error)) from None

    from agenther_dspy.tracking import tracked_run

    shown = []  # the first results, for the table; the rest are in the results file
    params = _program_params(
        program, program_file, model=model, base_url=base_url, judge_model=judge_model
    )
    params.update(
        input_file=str(input_file),
        output=str(output),
        output_format=output_format.value,
        temperature=temperature,
        concurrency=concurrency,
    )
    tracking_context = tracked_run("run", enabled=not no_mlflow, tracking_uri=tracking_uri)
    with (
        tracking_context as tracking,
        BatchProgress(err_console, total=count_input_records(input_file)) as progress,
    ):
        tracking.log_params(params)

        def on_start(state) -> None:
            for note in state.repairs:
                err_console.print(f"[yellow]resume:[/yellow] {note}", highlight=False)
            if state.done:
                err_console.print(
                    f"resuming: {len(state.done)} records already done in {results_path}",
                    highlight=False,
                )
            progress.start(state)

        def on_result(result) -> None:
            if len(shown) < TABLE_ROWS:
                shown.append(result)
            if result.status == "invalid":
                err_console.print(
                    f"[yellow]invalid[/yellow] {result.file}:{result.line}: {result.reason}"
                )
            progress.update(result)

        def on_interrupt() -> None:
            err_console.print(
                "stopping: finishing the trajectories in flight (Ctrl-C again to stop now)"
            )

        try:
            summary = run_batch(
                records,
                program,
                output_path=output,
                results_path=results_path,
                output_format=output_format,
                lm=lm,
                concurrency=concurrency,
                retry_errors=retry_errors,
                overwrite=overwrite,
                on_start=on_start,
                on_result=on_result,
                on_interrupt=on_interrupt,
            )
        except (InputError, ResumeError) as error:
            raise fail(str(error)) from None
        tracking.log_metrics(_batch_metrics(summary))
        tracking.log_json(
            {"counts_this_run": dict(summary.counts), "counts_all": dict(summary.all_counts)},
            "run_summary.json",
        )

    if shown:
        _print_results(shown)
    if summary.processed > len(shown):
        console.print(f"… and {summary.processed - len(shown)} more in {results_path}")
    earlier = sum(summary.earlier.values())
    console.print(
        f"{summary.total} records: {counts_text(summary.all_counts)}. "
        f"Wrote {summary.rows_written} {output_format.value} rows to {output}"
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
        raise typer.Exit(130)  # 128 + SIGINT, as for any interrupted command
    if hf_dataset:
        from agenther_dspy.formats.hf import write_hf_dataset
        from agenther_dspy.tracking import program_hash

        rows = (json.loads(line) for line in output.read_text().splitlines() if line.strip())
        card = {
            "source_files": [str(input_file)],
            "model": model,
            "program_hash": program_hash(program),
            "min_confidence": min_confidence,
            "severity_threshold": severity_threshold,
            "max_attempts": max_attempts,
            "counts": dict(summary.all_counts),
            "output_format": output_format.value,
        }
        write_hf_dataset(rows, hf_dataset, card)
        console.print(f"Hugging Face dataset (all {summary.rows_total} rows): {hf_dataset}")
    raise typer.Exit(EXIT_SOME_INVALID if summary.bad else EXIT_OK)


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


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="print the list as JSON")] = False,
) -> None:
    """List the embedded models: size, whether installed and verified, how to install."""
    from agenther_dspy.lm.models import list_models

    rows = list_models()
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


@app.command()
def convert(
    input_file: Annotated[
        Path,
        typer.Argument(help="agent log: AgentHER, OpenAI, Anthropic, ShareGPT, tau-bench, tau2"),
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="AgentHER-format trajectories (JSON lines)")
    ],
    input_format: Annotated[
        InputFormat,
        typer.Option("--from", help="format of INPUT_FILE; auto: judged from its first record"),
    ] = InputFormat.AUTO,
    failed_only: Annotated[
        bool,
        typer.Option(
            "--failed-only", help="keep only runs with a reward below 1 (runs without one stay)"
        ),
    ] = False,
) -> None:
    """Convert the agent runs in INPUT_FILE into AgentHER trajectories, one per line."""
    from agenther_dspy.formats import detect_format, is_failed, open_reader

    written = passed = invalid = 0
    partial = output.with_name(output.name + ".partial")
    try:
        name = detect_format(input_file) if input_format is InputFormat.AUTO else input_format
        output.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("w", encoding="utf-8") as out:
            for record in open_reader(input_file, name):
                if not hasattr(record, "trajectory"):
                    invalid += 1
                    err_console.print(f"[red]✗[/red] {record}", highlight=False)
                elif failed_only and not is_failed(record.trajectory):
                    passed += 1
                else:
                    row = record.trajectory.model_dump(mode="json")
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    written += 1
        partial.replace(output)
    except (InputError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise fail(str(error)) from None
    notes = [f"{invalid} invalid"] if invalid else []
    if failed_only:
        notes.append(f"{passed} successful runs left out")
    extra = f" ({', '.join(notes)})" if notes else ""
    console.print(
        f"Wrote {written} trajectories from {input_file} ({name}) to {output}{extra}",
        highlight=False,
    )
    raise typer.Exit(EXIT_SOME_INVALID if invalid else EXIT_OK)


@app.command()
def evaluate(
    dataset: Annotated[
        Path | None,
        typer.Option(help="labeled JSONL file, or a folder of split files (default: shipped set)"),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="split file in a folder: train, dev or test (default test)")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="evaluate a random sample of this many examples (see --seed)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the --limit sample")] = 0,
    program_file: Annotated[
        str | None, typer.Option("--program", help="a compiled program saved by compile")
    ] = None,
    uncompiled: Annotated[
        bool,
        typer.Option(
            "--uncompiled", help="do not use the compiled program shipped for the local model"
        ),
    ] = False,
    model: ModelOpt = "local",
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    judge_model: Annotated[
        str | None, typer.Option("--judge-model", help="a different model for the second judge")
    ] = None,
    metric_judge: Annotated[
        str | None,
        typer.Option(help="add an LM judge's verdict to the fidelity metric, with this model"),
    ] = None,
    min_confidence: Annotated[float, typer.Option(min=0.0, max=1.0, help="θ")] = 0.5,
    severity_threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="δ")] = 0.3,
    max_attempts: Annotated[int, typer.Option(min=1, help="K")] = 3,
    llm_detector: Annotated[
        bool, typer.Option("--llm-detector/--rule-detector", help="ignored with --program")
    ] = False,
    llm_extractor: Annotated[
        bool, typer.Option("--llm-extractor/--rule-extractor", help="ignored with --program")
    ] = True,
    single_judge_fallback: FallbackOpt = True,
    threads: Annotated[int, typer.Option(min=1, help="examples evaluated at once")] = 1,
    report: Annotated[Path | None, typer.Option(help="where to write the JSON report")] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default sqlite:///mlflow.db)")
    ] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="do not log to MLflow")] = False,
    cache_dir: Annotated[Path | None, typer.Option(help="LM response cache folder")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not cache LM calls")] = False,
) -> None:
    """Run the program over a labeled set and report relabel fidelity and prompt quality."""
    _check_program_flags(program_file, uncompiled)
    from agenther_dspy.eval import evaluate as run_evaluation
    from agenther_dspy.eval import (
        load_labeled,
        make_fidelity_metric,
        resolve_dataset,
        sample_labeled,
    )
    from agenther_dspy.lm import LMConfigError, build_lm
    from agenther_dspy.lm.factory import configure_cache
    from agenther_dspy.optimizers import ProgramError
    from agenther_dspy.tracking import scrub, tracked_run

    try:
        path = resolve_dataset(dataset, split)
        labeled = sample_labeled(load_labeled(path), limit, seed)
        configure_cache(cache_dir, enabled=not no_cache)
        lm = build_lm(model, base_url=base_url, api_key_env=api_key_env)
        judge_lm = _judge_lm(judge_model, base_url, api_key_env)
        metric_lm = _judge_lm(metric_judge, base_url, api_key_env)
        program, program_file = _make_program(
            program_file,
            model=model,
            uncompiled=uncompiled,
            tracking_uri=tracking_uri,
            llm_detector=llm_detector,
            llm_extractor=llm_extractor,
            single_judge_fallback=single_judge_fallback,
            min_confidence=min_confidence,
            severity_threshold=severity_threshold,
            max_attempts=max_attempts,
            judge_lm=judge_lm,
        )
    except (InputError, LMConfigError, ProgramError, ValueError) as error:
        raise fail(str(error)) from None
    for bad in labeled.invalid:
        err_console.print(f"[yellow]invalid[/yellow] {bad}", highlight=False)
    if not labeled.examples:
        raise fail(f"{path}: no valid labeled examples")

    params = _program_params(
        program, program_file, model=model, base_url=base_url, judge_model=judge_model
    )
    params.update(
        metric_judge=metric_judge,
        dataset=str(path),
        dataset_sha256=labeled.sha256,
        examples=len(labeled.examples),
        limit=limit,
        limit_seed=seed if limit else None,
    )
    report = report or Path("outputs") / f"evaluation-{path.stem}.json"
    with tracked_run("evaluate", enabled=not no_mlflow, tracking_uri=tracking_uri) as tracking:
        tracking.log_params(params)
        with _progress("evaluating", len(labeled.examples)) as advance:
            result = run_evaluation(
                program,
                labeled,
                lm=lm,
                metric=make_fidelity_metric(metric_lm),
                threads=threads,
                on_row=advance,
            )
        numeric = {k: v for k, v in result.summary.items() if isinstance(v, int | float)}
        tracking.log_metrics(numeric)
        tracking.log_json(result.to_json(), "evaluation.json")
        report.parent.mkdir(parents=True, exist_ok=True)
        full_report = scrub({"params": params, **result.to_json()})
        report.write_text(json.dumps(full_report, indent=2, ensure_ascii=False) + "\n")
    _print_evaluation(result)
    console.print_json(json.dumps(result.summary))
    where = f"; MLflow run {tracking.run_id}" if tracking.run_id else ""
    console.print(f"Report: {report}{where}")
    raise typer.Exit(EXIT_SOME_INVALID if labeled.invalid else EXIT_OK)


@app.command(name="compile")
def compile_command(
    trainset: Annotated[Path, typer.Option(help="labeled JSONL to learn from")],
    devset: Annotated[Path, typer.Option(help="labeled JSONL to score before and after")],
    optimizer: Annotated[
        str,
        typer.Option(
            help="labeled, labeled-search, bootstrap, random-search, mipro, simba or gepa"
        ),
    ] = "labeled",
    output: Annotated[Path, typer.Option("-o", "--output", help="compiled program JSON")] = Path(
        "relabeler.json"
    ),
    model: ModelOpt = "local",
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    prompt_model: Annotated[
        str | None, typer.Option(help="model that proposes instructions (mipro, simba)")
    ] = None,
    reflection_model: Annotated[
        str | None, typer.Option(help="model that reflects on feedback (gepa; required)")
    ] = None,
    budget: Annotated[
        int | None, typer.Option(help="the optimizer's budget (its meaning is printed)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed for sampling demos and candidates")] = 0,
    threads: Annotated[int, typer.Option(min=1, help="program runs at once")] = 1,
    llm_detector: Annotated[
        bool, typer.Option("--llm-detector/--rule-detector", help="compile an LM detector")
    ] = False,
    llm_extractor: Annotated[
        bool, typer.Option("--llm-extractor/--rule-extractor", help="compile an LM extractor")
    ] = True,
    single_judge_fallback: FallbackOpt = True,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI")] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="do not log to MLflow")] = False,
    register: Annotated[
        str, typer.Option(help="MLflow registered model name ('' to skip registering)")
    ] = "agenther-dspy-relabeler",
    cache_dir: Annotated[Path | None, typer.Option(help="LM response cache folder")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not cache LM calls")] = False,
    traces: Annotated[
        bool, typer.Option("--traces", help="record every DSPy call as an MLflow trace")
    ] = False,
) -> None:
    """Optimize the program's prompts against the labeled set and save the compiled program."""
    import time

    import dspy

    from agenther_dspy.eval import evaluate as run_evaluation
    from agenther_dspy.eval import load_labeled, paired_difference
    from agenther_dspy.lm import LMConfigError, build_lm
    from agenther_dspy.lm.factory import configure_cache
    from agenther_dspy.optimizers import save_program
    from agenther_dspy.optimizers.compile import OPTIMIZERS, compile_program, plan
    from agenther_dspy.signatures import signature_hash
    from agenther_dspy.tracking import dspy_traces, log_program_model, scrub, tracked_run

    try:
        train, dev = load_labeled(trainset), load_labeled(devset)
        for bad in train.invalid + dev.invalid:
            err_console.print(f"[yellow]invalid[/yellow] {bad}", highlight=False)
        if not train.examples or not dev.examples:
            raise InputError("the train and dev sets need at least one valid example each")
        program = HindsightRelabeler(
            llm_detector=llm_detector,
            llm_extractor=llm_extractor,
            single_judge_fallback=single_judge_fallback,
        )
        the_plan = plan(optimizer, budget, program, len(train.examples), len(dev.examples))
        if OPTIMIZERS[optimizer].needs == "reflection_lm" and not reflection_model:
            raise LMConfigError(f"{optimizer} needs --reflection-model")
        configure_cache(cache_dir, enabled=not no_cache)
        lm = build_lm(model, base_url=base_url, api_key_env=api_key_env)
        prompt_lm = _judge_lm(prompt_model, base_url, api_key_env)
        reflection_lm = _judge_lm(reflection_model, base_url, api_key_env)
    except (InputError, LMConfigError, ValueError) as error:
        raise fail(str(error)) from None

    console.print(
        f"[bold]{optimizer}[/bold], budget {the_plan.budget} "
        f"({OPTIMIZERS[optimizer].budget_means}): expected ≈ {the_plan.expected_lm_calls} LM calls"
        f" = {the_plan.explanation}",
        highlight=False,
    )
    params = scrub(
        {
            "optimizer": optimizer,
            "budget": the_plan.budget,
            "expected_lm_calls": the_plan.expected_lm_calls,
            "seed": seed,
            "model": model,
            "base_url": base_url,
            "prompt_model": prompt_model,
            "reflection_model": reflection_model,
            "trainset": str(trainset),
            "trainset_sha256": train.sha256,
            "devset": str(devset),
            "devset_sha256": dev.sha256,
            "signature_hash": signature_hash(),
            "llm_detector": llm_detector,
            "llm_extractor": llm_extractor,
            "single_judge_fallback": single_judge_fallback,
            "traces": traces,
        }
    )
    with tracked_run("compile", enabled=not no_mlflow, tracking_uri=tracking_uri) as tracking:
        tracking.log_params(params)
        with _progress("scoring dev (before)", len(dev.examples)) as advance:
            before = run_evaluation(program, dev, lm=lm, threads=threads, on_row=advance)
        started = time.perf_counter()
        traced = dspy_traces(traces and not no_mlflow)
        with (
            _progress("compiling (LM calls)", the_plan.expected_lm_calls) as advance,
            traced,
            dspy.context(lm=lm, callbacks=[*dspy.settings.callbacks, _CountLMCalls(advance)]),
            dspy.track_usage() as usage,
        ):
            compiled = compile_program(
                program,
                train.examples,
                dev.examples,
                optimizer=optimizer,
                budget=the_plan.budget,
                seed=seed,
                threads=threads,
                prompt_lm=prompt_lm,
                reflection_lm=reflection_lm,
                log=lambda line: err_console.print(line, highlight=False),
            )
        compile_seconds = time.perf_counter() - started
        compile_calls = sum(len(entries) for entries in usage.usage_data.values())
        with _progress("scoring dev (after)", len(dev.examples)) as advance:
            after = run_evaluation(compiled, dev, lm=lm, threads=threads, on_row=advance)
        scores = {
            "dev_fidelity_before": before.summary["fidelity"],
            "dev_fidelity_after": after.summary["fidelity"],
            "dev_fidelity_ci95_before": before.summary["fidelity_ci95"],
            "dev_fidelity_ci95_after": after.summary["fidelity_ci95"],
            "dev_gain": paired_difference(before.rows, after.rows),
            "compile_lm_calls": compile_calls,
            "compile_seconds": round(compile_seconds, 1),
        }
        sidecar = save_program(compiled, output, **params, scores=scores)
        tracking.log_metrics(
            {
                **{f"dev_{k}_before": v for k, v in _numeric(before.summary).items()},
                **{f"dev_{k}_after": v for k, v in _numeric(after.summary).items()},
                "dev_fidelity_gain": scores["dev_gain"]["gain"],
                "compile_lm_calls": compile_calls,
                "compile_seconds": compile_seconds,
            }
        )
        tracking.log_file(output, "program")
        tracking.log_file(sidecar, "program")
        tracking.log_json({"before": before.to_json(), "after": after.to_json()}, "dev_eval.json")
        if tracking.run_id:
            log_program_model(
                output,
                model_config={"model": model, "base_url": base_url, "api_key_env": api_key_env},
                registered_model_name=register or None,
            )
    gain = scores["dev_gain"]
    console.print(
        f"dev fidelity {before.summary['fidelity']:.3f} {before.summary['fidelity_ci95']} → "
        f"{after.summary['fidelity']:.3f} {after.summary['fidelity_ci95']}; paired gain "
        f"{gain['gain']:+.3f} {gain['gain_ci95']}"
        f" ({'beyond' if gain['beyond_noise'] else 'within'} noise); "
        f"{compile_calls} LM calls, {compile_seconds:.0f} s to compile",
        highlight=False,
    )
    where = f"; MLflow run {tracking.run_id}" if tracking.run_id else ""
    console.print(f"Saved {output} and {sidecar.name}{where}")


def _program_params(
    program: HindsightRelabeler,
    program_file: str | None,
    *,
    model: str,
    base_url: str | None,
    judge_model: str | None,
) -> dict:
    """What `run` and `evaluate` log about the program they ran, scrubbed of secrets."""
    from agenther_dspy.signatures import signature_hash
    from agenther_dspy.tracking import program_hash, scrub

    return scrub(
        {
            "model": model,
            "base_url": base_url,
            "judge_model": judge_model,
            "program_file": program_file,
            "program_hash": program_hash(program),
            "signature_hash": signature_hash(),
            "min_confidence": program.relabeler.min_confidence,
            "severity_threshold": program.severity_threshold,
            "max_attempts": program.relabeler.max_attempts,
            "llm_detector": program.uses_llm_detector,
            "llm_extractor": program.uses_llm_extractor,
            "single_judge_fallback": program.single_judge_fallback,
        }
    )


def _batch_metrics(summary) -> dict[str, float]:
    """One `run` invocation's figures; a resumed batch also reports what was done earlier."""
    metrics: dict[str, float] = {
        status: float(summary.all_counts.get(status, 0))
        for status in ("accepted", "rejected", "skipped", "error", "invalid")
    }
    metrics.update(
        records=summary.total,
        processed_this_run=summary.processed,
        rows_written=summary.rows_written,
        rows_total=summary.rows_total,
        lm_calls=summary.lm_calls,
        prompt_tokens=summary.prompt_tokens,
        completion_tokens=summary.completion_tokens,
        seconds=summary.seconds,
        interrupted=float(summary.interrupted),
    )
    return metrics


def _numeric(summary: dict) -> dict[str, float]:
    return {k: v for k, v in summary.items() if isinstance(v, int | float)}


def _check_program_flags(program_file: str | None, uncompiled: bool) -> None:
    if program_file and uncompiled:
        raise fail("--program and --uncompiled contradict each other; give one")


def _make_program(
    program_file: str | None,
    *,
    model: str,
    uncompiled: bool,
    tracking_uri: str | None,
    llm_detector: bool,
    llm_extractor: bool,
    single_judge_fallback: bool = True,
    **settings,
) -> tuple[HindsightRelabeler, str | None]:
    """The program to run and where it came from.

    --program names a compiled program (its stages come from its sidecar); without it, the
    program compiled for the local model is used when one is shipped (unless --uncompiled);
    otherwise a fresh program with the stages the flags ask for. `settings` are θ, δ, K and
    the judge LM.
    """
    from agenther_dspy.optimizers import load_program, shipped_program

    if program_file:
        err_console.print(f"Using the compiled program {program_file}", highlight=False)
    elif not uncompiled:
        shipped = shipped_program(model)
        if shipped is not None:
            err_console.print(
                f"Using the compiled program shipped for {model}: {shipped.name} "
                "(--uncompiled to run without it)",
                highlight=False,
            )
            program_file = str(shipped)
    if program_file:
        return load_program(program_file, tracking_uri=tracking_uri, **settings), program_file
    fresh = HindsightRelabeler(
        llm_detector=llm_detector,
        llm_extractor=llm_extractor,
        single_judge_fallback=single_judge_fallback,
        **settings,
    )
    return fresh, None


def _judge_lm(spec: str | None, base_url: str | None, api_key_env: str | None):
    from agenther_dspy.lm import build_lm, is_local

    if not spec:
        return None
    return build_lm(spec, base_url=None if is_local(spec) else base_url, api_key_env=api_key_env)


class _CountLMCalls(BaseCallback):
    """Advances the compile's progress by one at the end of each LM call."""

    def __init__(self, advance) -> None:
        self.advance = advance

    def on_lm_end(self, call_id, outputs, exception=None) -> None:
        self.advance()


@contextmanager
def _progress(label: str, total: int | None):
    """`run`'s progress display on stderr (a bar with counts and ETA on a terminal, a line a
    minute elsewhere); yields the function that advances it by one row or LM call."""
    import threading

    from agenther_dspy.runner import BatchProgress

    lock = threading.Lock()  # rows may come from evaluate's threads

    def advance(row: object = None) -> None:
        with lock:
            progress.update(row)

    with BatchProgress(err_console, total=total, label=label) as progress:
        yield advance


def _print_evaluation(result) -> None:
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
