"""The command-line options that several commands share, with one help text each and
their defaults taken from the settings objects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from agenther_dspy.display import fail
from agenther_dspy.formats import InputFormat
from agenther_dspy.schema import OutputFormat
from agenther_dspy.settings import DetectorKind, ProgramSettings, RelabelerKind

DEFAULT = ProgramSettings()
STRUCTURED = DEFAULT.relabeler == "structured"
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
TimeoutOpt = Annotated[
    float | None,
    typer.Option(help="seconds per remote LM call before it is retried (default 120)"),
]
RetriesOpt = Annotated[
    int,
    typer.Option(
        min=0,
        help="retries of an LM call after a rate limit, server error or timeout, "
        "with exponential backoff (1, 2, 4… s)",
    ),
]
CacheDirOpt = Annotated[
    Path | None, typer.Option(help="LM response cache (default: $AGENTHER_DSPY_HOME/lm-cache)")
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="do not cache LM calls")]
JudgeOpt = Annotated[
    str | None, typer.Option("--judge-model", help="a different model for the second judge")
]
MinConfidenceOpt = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="θ: both judges' confidence to accept")
]
SeverityOpt = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="δ: skip runs with a lower severity weight")
]
AttemptsOpt = Annotated[int, typer.Option(min=1, help="K: relabeling attempts per run")]
DetectorOpt = Annotated[
    str,
    typer.Option(
        callback=lambda value: _one_of(value, DetectorKind.__args__),  # type: ignore[attr-defined]
        help="failure detection: rules, lm, or hybrid (rules settle the clear-cut runs, the"
        " LM judges the rest)",
    ),
]
StructuredOpt = Annotated[
    bool,
    typer.Option(
        "--structured/--free-relabeler",
        help="structured relabeling (code reads the run's facts, the LM chooses a goal and"
        " phrases it, code checks the request) or AgentHER's free relabeler",
    ),
]


def _one_of(value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}")
    return value


def relabeler(structured: bool) -> RelabelerKind:
    return "structured" if structured else "free"


def check_program_flags(program_file: str | None, uncompiled: bool) -> None:
    if program_file and uncompiled:
        raise fail("--program and --uncompiled contradict each other; give one")


ExtractorOpt = Annotated[
    bool, typer.Option("--llm-extractor/--rule-extractor", help="outcome extraction by LM")
]
FallbackOpt = Annotated[
    bool,
    typer.Option(
        "--single-judge-fallback/--judge-required",
        help="accept a run no second judge accepted when its best attempt is confident enough"
        " (AgentHER), or require the judge; a compiled program brings its own rule",
    ),
]
ProgramOpt = Annotated[
    str | None,
    typer.Option("--program", help="compiled program: a file, models:/NAME/V or runs:/ID/P"),
]
UncompiledOpt = Annotated[
    bool,
    typer.Option(
        "--uncompiled", help="do not use the compiled program shipped for the local model"
    ),
]
TrackingOpt = Annotated[
    str | None, typer.Option(help="MLflow tracking URI (default sqlite:///mlflow.db)")
]
NoMlflowOpt = Annotated[bool, typer.Option("--no-mlflow", help="do not log to MLflow")]

OutputOpt = Annotated[Path | None, typer.Option("-o", "--output", help="training rows (JSONL)")]
OutputFormatOpt = Annotated[
    OutputFormat, typer.Option("-f", "--format", help="kind of training rows")
]
TemperatureOpt = Annotated[
    float, typer.Option(min=0.0, max=2.0, help="temperature of the detect/extract stages")
]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="trajectories in flight (default: 1 for the embedded local model, "
        "8 for a remote server); with --ray, in each actor",
    ),
]
RAY_HERE = "local"  # what a bare --ray means: start Ray in this process
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="[ADDRESS]",
        help="run the batch on Ray Data: alone, on a Ray started here; auto, HOST:PORT or "
        "ray://HOST:10001 joins a cluster (put --ray after INPUT_FILE, or write --ray=ADDRESS)",
    ),
]
RayActorsOpt = Annotated[
    int | None,
    typer.Option(
        "--ray-actors",
        min=1,
        help="Ray actors, each building the LM and the program once (default: one per CPU "
        "for the embedded model, up to 4 for a remote server)",
    ),
]


class OptionalValues(TyperCommand):
    """A command whose `--ray` may come without a value (Typer has no such option): a bare
    `--ray`, last or before another option, means `--ray=local`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args = list(args)
        for i, arg in enumerate(args):
            if arg == "--ray" and (i + 1 == len(args) or args[i + 1].startswith("-")):
                args[i] = f"--ray={RAY_HERE}"
        return super().parse_args(ctx, args)


ResultsFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--results",
        help="one line per input record: status, stage, reason, confidences, LM calls "
        "and tokens (default: beside OUTPUT, OUTPUT-STEM.results.jsonl)",
    ),
]
RetryErrorsOpt = Annotated[
    bool,
    typer.Option("--retry-errors", help="run again the records whose results say error"),
]
OverwriteOpt = Annotated[
    bool,
    typer.Option("--overwrite", help="discard OUTPUT and its results file; start over"),
]
HfDatasetOpt = Annotated[
    Path | None,
    typer.Option(help="also write all rows as a Hugging Face dataset (with a card) here"),
]
InputFormatOpt = Annotated[
    InputFormat, typer.Option("--input-format", help="format of INPUT_FILE (default: detect)")
]
InputFileOpt = Annotated[
    Path,
    typer.Argument(help="agent log: AgentHER, OpenAI, Anthropic, ShareGPT, tau-bench, tau2"),
]
ConvertOutputOpt = Annotated[
    Path, typer.Option("-o", "--output", help="AgentHER-format trajectories (JSON lines)")
]
ConvertInputFormatOpt = Annotated[
    InputFormat,
    typer.Option("--from", help="format of INPUT_FILE; auto: judged from its first record"),
]
FailedOnlyOpt = Annotated[
    bool,
    typer.Option(
        "--failed-only", help="keep only runs with a reward below 1 (runs without one stay)"
    ),
]
DatasetOpt = Annotated[
    Path | None,
    typer.Option(help="labeled JSONL file, or a folder of split files (default: shipped set)"),
]
SplitOpt = Annotated[
    str | None, typer.Option(help="split file in a folder: train, dev or test (default test)")
]
LimitOpt = Annotated[
    int | None,
    typer.Option(min=1, help="evaluate a random sample of this many examples (see --seed)"),
]
SeedOpt = Annotated[int, typer.Option(help="seed of the --limit sample")]
MetricJudgeOpt = Annotated[
    str | None,
    typer.Option(help="add an LM judge's verdict to the fidelity metric, with this model"),
]
OptimizerOpt = Annotated[
    str,
    typer.Option(
        help="labeled, labeled-search, nearest, bootstrap, random-search, mipro, simba or gepa"
    ),
]
PromptModelOpt = Annotated[
    str | None, typer.Option(help="model that proposes instructions (mipro, simba)")
]
ReflectionModelOpt = Annotated[
    str | None, typer.Option(help="model that reflects on feedback (gepa; required)")
]
BudgetOpt = Annotated[
    int | None, typer.Option(help="the optimizer's budget (its meaning is printed)")
]
RegisterOpt = Annotated[
    str, typer.Option(help="MLflow registered model name ('' to skip registering)")
]
TracesOpt = Annotated[
    bool, typer.Option("--traces", help="record every DSPy call as an MLflow trace")
]
CompileOutputOpt = Annotated[Path, typer.Option("-o", "--output", help="compiled program JSON")]
