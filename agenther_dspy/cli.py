"""The `agenther-dspy` command: reads flags, calls the library, prints what happened.

Exit codes: 0 every input record was processed; 1 some records were invalid or failed with
an error (each is reported with its file, line and reason); 2 the command could not run
(bad flags, unreadable input, unusable model).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from agenther_dspy import options as opt
from agenther_dspy.display import (
    EXIT_OK,
    EXIT_SOME_INVALID,
    console,
    err_console,
    fail,
    failing_on,
    note,
    print_compile,
    print_evaluation,
    print_invalid,
    print_models,
    print_plan,
    print_run,
    progress_bar,
)
from agenther_dspy.formats import InputError, InputFormat, open_reader, read_trajectories
from agenther_dspy.review import announce, review_command
from agenther_dspy.schema import OutputFormat
from agenther_dspy.settings import RUN_TEMPERATURE, LMSettings, ProgramSettings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn failed agent runs into training data by hindsight relabeling.",
)


@app.command(cls=opt.OptionalValues)
def run(
    input_file: Annotated[Path, typer.Argument(help="AgentHER-format JSON array or JSON lines")],
    output: opt.OutputOpt = None,
    output_format: opt.OutputFormatOpt = OutputFormat.SFT,
    model: opt.ModelOpt = "local",
    base_url: opt.BaseUrlOpt = None,
    api_key_env: opt.KeyEnvOpt = None,
    judge_model: opt.JudgeOpt = None,
    min_confidence: opt.MinConfidenceOpt = opt.DEFAULT.min_confidence,
    severity_threshold: opt.SeverityOpt = opt.DEFAULT.severity_threshold,
    max_attempts: opt.AttemptsOpt = opt.DEFAULT.max_attempts,
    temperature: opt.TemperatureOpt = RUN_TEMPERATURE,
    detector: opt.DetectorOpt = opt.DEFAULT.detector,
    llm_extractor: opt.ExtractorOpt = opt.DEFAULT.llm_extractor,
    structured: opt.StructuredOpt = opt.STRUCTURED,
    single_judge_fallback: opt.FallbackOpt = opt.DEFAULT.single_judge_fallback,
    concurrency: opt.ConcurrencyOpt = None,
    timeout: opt.TimeoutOpt = None,
    retries: opt.RetriesOpt = LMSettings.retries,
    results_file: opt.ResultsFileOpt = None,
    retry_errors: opt.RetryErrorsOpt = False,
    overwrite: opt.OverwriteOpt = False,
    cache_dir: opt.CacheDirOpt = None,
    no_cache: opt.NoCacheOpt = False,
    hf_dataset: opt.HfDatasetOpt = None,
    input_format: opt.InputFormatOpt = InputFormat.AUTO,
    program_file: opt.ProgramOpt = None,
    uncompiled: opt.UncompiledOpt = False,
    tracking_uri: opt.TrackingOpt = None,
    no_mlflow: opt.NoMlflowOpt = False,
    ray: opt.RayOpt = None,
    ray_actors: opt.RayActorsOpt = None,
) -> None:
    """Relabel the failed runs in INPUT_FILE and write the accepted ones as training rows.

    Re-running the same command resumes: records already in the results file are skipped
    and nothing is written twice, after Ctrl-C or a killed process alike.
    """
    opt.check_program_flags(program_file, uncompiled)
    from agenther_dspy.lm import LMConfigError, is_local
    from agenther_dspy.optimizers import ProgramError
    from agenther_dspy.programs import choose_program, program_params
    from agenther_dspy.runner import (
        BatchProgress,
        ResumeError,
        count_input_records,
        default_results_path,
        run_batch,
    )
    from agenther_dspy.runner.ray_batch import RayError, ray_runner
    from agenther_dspy.tracking import log_results_table, tracked_run

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
    settings = ProgramSettings(
        min_confidence, severity_threshold, max_attempts, temperature, detector,
        llm_extractor, single_judge_fallback, judge_model, opt.relabeler(structured),
    )  # fmt: skip
    lm_settings = LMSettings(model, base_url, api_key_env, timeout, retries, cache_dir,
                             not no_cache)  # fmt: skip
    with failing_on(InputError, LMConfigError, ProgramError, ValueError):
        lm_settings.check(judge_model)
        lm_settings.configure_cache()
        records = open_reader(input_file, input_format)
        lm = lm_settings.build(temperature=temperature)
        program, program_file = choose_program(
            program_file, settings, lm_settings, uncompiled=uncompiled,
            tracking_uri=tracking_uri, log=note,
        )  # fmt: skip

    params = program_params(program, program_file, lm_settings, judge_model)
    params.update(input_file=str(input_file), output=str(output), ray=ray, ray_actors=ray_actors)
    params.update(output_format=output_format.value, temperature=temperature,
                  concurrency=concurrency)  # fmt: skip
    tracking_context = tracked_run("run", enabled=not no_mlflow, tracking_uri=tracking_uri)
    total = count_input_records(input_file)
    with tracking_context as tracking, BatchProgress(err_console, total=total) as progress:
        tracking.log_params(params)
        batch = dict(
            output_path=output, results_path=results_path, output_format=output_format,
            concurrency=concurrency, retry_errors=retry_errors, overwrite=overwrite,
            on_start=progress.start, on_result=progress.update, on_interrupt=progress.interrupted,
        )  # fmt: skip
        runner = run_batch if ray is None else ray_runner(ray, ray_actors, lm_settings, settings)
        with failing_on(InputError, ResumeError, RayError):
            summary = runner(records, program, lm=lm, **batch)
        tracking.log_metrics(summary.metrics())
        tracking.log_json(
            {"counts_this_run": dict(summary.counts), "counts_all": dict(summary.all_counts)},
            "run_summary.json",
        )
        log_results_table(tracking, results_path)

    print_run(summary, progress.shown, output_format.value)
    announce(console, results_path, run_id=tracking.run_id, tracking_uri=tracking_uri)
    if summary.interrupted:
        raise typer.Exit(130)  # 128 + SIGINT, as for any interrupted command
    if hf_dataset:
        from agenther_dspy.formats.hf import read_rows, write_hf_dataset
        from agenther_dspy.modules.program import program_hash

        card = {"source_files": [str(input_file)], "model": model}
        card.update(program_hash=program_hash(program), **settings.limits())
        card.update(counts=dict(summary.all_counts), output_format=output_format.value)
        write_hf_dataset(read_rows(output), hf_dataset, card)
        console.print(f"Hugging Face dataset (all {summary.rows_total} rows): {hf_dataset}")
    raise typer.Exit(EXIT_SOME_INVALID if summary.bad else EXIT_OK)


@app.command()
def validate(
    input_file: Annotated[Path, typer.Argument(help="AgentHER-format JSON array or JSON lines")],
) -> None:
    """Check every record of INPUT_FILE against the input schema; report each defect."""
    valid = invalid = 0
    with failing_on(InputError):
        for record in read_trajectories(input_file):
            if hasattr(record, "trajectory"):
                valid += 1
            else:
                invalid += 1
                console.print(f"[red]✗[/red] {record}", highlight=False)
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

    print_models(list_models(), as_json=as_json)


@app.command()
def convert(
    input_file: opt.InputFileOpt,
    output: opt.ConvertOutputOpt,
    input_format: opt.ConvertInputFormatOpt = InputFormat.AUTO,
    failed_only: opt.FailedOnlyOpt = False,
) -> None:
    """Convert the agent runs in INPUT_FILE into AgentHER trajectories, one per line."""
    from agenther_dspy.formats import convert_file

    def report(record) -> None:
        err_console.print(f"[red]✗[/red] {record}", highlight=False)

    with failing_on(InputError, OSError):
        done = convert_file(
            input_file, output, input_format, failed_only=failed_only, on_invalid=report
        )
    notes = [f"{done.invalid} invalid"] if done.invalid else []
    if failed_only:
        notes.append(f"{done.successful} successful runs left out")
    extra = f" ({', '.join(notes)})" if notes else ""
    console.print(
        f"Wrote {done.written} trajectories from {input_file} ({done.input_format}) to {output}"
        f"{extra}",
        highlight=False,
    )
    raise typer.Exit(EXIT_SOME_INVALID if done.invalid else EXIT_OK)


@app.command()
def evaluate(
    dataset: opt.DatasetOpt = None,
    split: opt.SplitOpt = None,
    limit: opt.LimitOpt = None,
    seed: opt.SeedOpt = 0,
    program_file: opt.ProgramOpt = None,
    uncompiled: opt.UncompiledOpt = False,
    model: opt.ModelOpt = "local",
    base_url: opt.BaseUrlOpt = None,
    api_key_env: opt.KeyEnvOpt = None,
    judge_model: opt.JudgeOpt = None,
    metric_judge: opt.MetricJudgeOpt = None,
    min_confidence: opt.MinConfidenceOpt = opt.DEFAULT.min_confidence,
    severity_threshold: opt.SeverityOpt = opt.DEFAULT.severity_threshold,
    max_attempts: opt.AttemptsOpt = opt.DEFAULT.max_attempts,
    detector: opt.DetectorOpt = opt.DEFAULT.detector,
    llm_extractor: opt.ExtractorOpt = opt.DEFAULT.llm_extractor,
    structured: opt.StructuredOpt = opt.STRUCTURED,
    single_judge_fallback: opt.FallbackOpt = opt.DEFAULT.single_judge_fallback,
    threads: Annotated[int, typer.Option(min=1, help="examples evaluated at once")] = 1,
    report: Annotated[Path | None, typer.Option(help="where to write the JSON report")] = None,
    timeout: opt.TimeoutOpt = None,
    retries: opt.RetriesOpt = LMSettings.retries,
    tracking_uri: opt.TrackingOpt = None,
    no_mlflow: opt.NoMlflowOpt = False,
    cache_dir: opt.CacheDirOpt = None,
    no_cache: opt.NoCacheOpt = False,
) -> None:
    """Run the program over a labeled set and report relabel fidelity and prompt quality.

    A saved program (--program, or the one shipped for the local model) brings its own
    stages and acceptance rule: the detector, extractor and fallback flags are then ignored.
    """
    opt.check_program_flags(program_file, uncompiled)
    from agenther_dspy import eval as ev
    from agenther_dspy.lm import LMConfigError
    from agenther_dspy.optimizers import ProgramError
    from agenther_dspy.optimizers.workflow import numeric
    from agenther_dspy.programs import choose_program, program_params
    from agenther_dspy.redaction import scrub
    from agenther_dspy.tracking import log_evaluation_table, tracked_run

    settings = ProgramSettings(
        min_confidence, severity_threshold, max_attempts, None, detector, llm_extractor,
        single_judge_fallback, judge_model, opt.relabeler(structured),
    )  # fmt: skip
    lm_settings = LMSettings(model, base_url, api_key_env, timeout, retries, cache_dir,
                             not no_cache)  # fmt: skip
    with failing_on(InputError, LMConfigError, ProgramError, ValueError):
        lm_settings.check(judge_model, metric_judge)
        path = ev.resolve_dataset(dataset, split)
        labeled = ev.sample_labeled(ev.load_labeled(path), limit, seed)
        lm_settings.configure_cache()
        lm = lm_settings.build()
        metric_lm = lm_settings.build_optional(metric_judge)
        program, program_file = choose_program(
            program_file, settings, lm_settings, uncompiled=uncompiled,
            tracking_uri=tracking_uri, log=note,
        )  # fmt: skip
    print_invalid(labeled.invalid)
    if not labeled.examples:
        raise fail(f"{path}: no valid labeled examples")

    params = program_params(program, program_file, lm_settings, judge_model)
    params.update(metric_judge=metric_judge, dataset=str(path), dataset_sha256=labeled.sha256)
    params.update(examples=len(labeled.examples), limit=limit, limit_seed=seed if limit else None)
    report = report or Path("outputs") / f"evaluation-{path.stem}.json"
    with tracked_run("evaluate", enabled=not no_mlflow, tracking_uri=tracking_uri) as tracking:
        tracking.log_params(params)
        with progress_bar("evaluating", len(labeled.examples)) as advance:
            metric = ev.make_fidelity_metric(metric_lm)
            result = ev.evaluate(
                program, labeled, lm=lm, metric=metric, threads=threads, on_row=lambda r: advance()
            )
        tracking.log_metrics(numeric(result.summary))
        tracking.log_json(result.to_json(), "evaluation.json")
        log_evaluation_table(tracking, result.rows)
        report.parent.mkdir(parents=True, exist_ok=True)
        full_report = scrub({"params": params, **result.to_json()})
        report.write_text(json.dumps(full_report, indent=2, ensure_ascii=False) + "\n")
    print_evaluation(result)
    console.print(f"Report: {report}")
    announce(console, report, run_id=tracking.run_id, tracking_uri=tracking_uri)
    raise typer.Exit(EXIT_SOME_INVALID if labeled.invalid else EXIT_OK)


app.command(name="review")(review_command)


@app.command(name="compile")
def compile_command(
    trainset: Annotated[Path, typer.Option(help="labeled JSONL to learn from")],
    devset: Annotated[Path, typer.Option(help="labeled JSONL to score before and after")],
    optimizer: opt.OptimizerOpt = "labeled",
    output: opt.CompileOutputOpt = Path("relabeler.json"),
    model: opt.ModelOpt = "local",
    base_url: opt.BaseUrlOpt = None,
    api_key_env: opt.KeyEnvOpt = None,
    prompt_model: opt.PromptModelOpt = None,
    reflection_model: opt.ReflectionModelOpt = None,
    budget: opt.BudgetOpt = None,
    seed: Annotated[int, typer.Option(help="seed for sampling demos and candidates")] = 0,
    threads: Annotated[int, typer.Option(min=1, help="program runs at once")] = 1,
    detector: opt.DetectorOpt = opt.DEFAULT.detector,
    llm_extractor: opt.ExtractorOpt = opt.DEFAULT.llm_extractor,
    structured: opt.StructuredOpt = opt.STRUCTURED,
    single_judge_fallback: opt.FallbackOpt = opt.DEFAULT.single_judge_fallback,
    tracking_uri: opt.TrackingOpt = None,
    no_mlflow: opt.NoMlflowOpt = False,
    register: opt.RegisterOpt = "agenther-dspy-relabeler",
    cache_dir: opt.CacheDirOpt = None,
    no_cache: opt.NoCacheOpt = False,
    timeout: opt.TimeoutOpt = None,
    retries: opt.RetriesOpt = LMSettings.retries,
    traces: opt.TracesOpt = False,
) -> None:
    """Optimize the program's prompts against the labeled set and save the compiled program."""
    from agenther_dspy.eval import load_labeled
    from agenther_dspy.lm import LMConfigError
    from agenther_dspy.modules.program import HindsightRelabeler
    from agenther_dspy.optimizers.compile import OPTIMIZERS, plan
    from agenther_dspy.optimizers.workflow import compile_and_save, compile_params
    from agenther_dspy.tracking import tracked_run

    settings = ProgramSettings(detector=detector, llm_extractor=llm_extractor,
                               single_judge_fallback=single_judge_fallback,
                               relabeler=opt.relabeler(structured))  # fmt: skip
    lm_settings = LMSettings(model, base_url, api_key_env, timeout, retries, cache_dir,
                             not no_cache)  # fmt: skip
    with failing_on(InputError, LMConfigError, ValueError):
        lm_settings.check(prompt_model, reflection_model)
        train, dev = load_labeled(trainset), load_labeled(devset)
        print_invalid(train.invalid + dev.invalid)
        if not train.examples or not dev.examples:
            raise InputError("the train and dev sets need at least one valid example each")
        program = HindsightRelabeler.from_settings(settings)
        the_plan = plan(optimizer, budget, program, len(train.examples), len(dev.examples))
        if OPTIMIZERS[optimizer].needs_reflection_lm and not reflection_model:
            raise LMConfigError(f"{optimizer} needs --reflection-model")
        lm_settings.configure_cache()
        lm = lm_settings.build()
        prompt_lm = lm_settings.build_optional(prompt_model)
        reflection_lm = lm_settings.build_optional(reflection_model)

    print_plan(the_plan, OPTIMIZERS[optimizer].budget_means)
    params = compile_params(
        the_plan, seed, settings, lm_settings, train, dev, prompt_model=prompt_model,
        reflection_model=reflection_model, traces=traces,
    )  # fmt: skip
    with tracked_run("compile", enabled=not no_mlflow, tracking_uri=tracking_uri) as tracking:
        done = compile_and_save(
            program, train, dev, plan=the_plan, output=output, params=params,
            tracking=tracking, lm=lm, seed=seed, threads=threads, prompt_lm=prompt_lm,
            reflection_lm=reflection_lm, traces=traces, register=register or None,
            model_config={"model": model, "base_url": base_url, "api_key_env": api_key_env},
            progress=progress_bar, log=note,
        )  # fmt: skip
    print_compile(done)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
