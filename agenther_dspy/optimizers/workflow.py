"""The whole compile: score dev, compile, score dev again, save, log and register.

`compile_and_save` is what `agenther-dspy compile` does once its flags are read; it returns
a `CompileReport` for the caller to print. The MLflow run is handed in (`tracking`), so the
optimizers never import the tracking code that logs their results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dspy
from dspy.utils.callback import BaseCallback

from agenther_dspy.eval import EvalReport, LabeledSet, evaluate, paired_difference
from agenther_dspy.modules.program import HindsightRelabeler
from agenther_dspy.optimizers.compile import Plan, compile_program
from agenther_dspy.optimizers.saving import save_program
from agenther_dspy.redaction import scrub
from agenther_dspy.settings import LMSettings, ProgramSettings
from agenther_dspy.signatures import signature_hash

if TYPE_CHECKING:
    from agenther_dspy.tracking import TrackedRun

# label, total → a context that yields the function advancing the bar by one example
Progress = Callable[[str, int], AbstractContextManager[Callable[[], None]]]


class _CountLMCalls(BaseCallback):
    """Advances the compile's progress by one at the end of each LM call."""

    def __init__(self, advance: Callable[[], None]) -> None:
        self.advance = advance

    def on_lm_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
        self.advance()


@contextmanager
def no_progress(label: str, total: int) -> Iterator[Callable[[], None]]:
    yield lambda: None


@dataclass(frozen=True)
class CompileReport:
    before: EvalReport  # dev, the program as given
    after: EvalReport  # dev, the compiled program
    gain: dict[str, Any]  # paired_difference(before, after)
    lm_calls: int  # of the compile itself, not the two dev evaluations
    seconds: float
    output: Path
    sidecar: Path
    run_id: str  # "" when not tracked


def compile_and_save(
    program: HindsightRelabeler,
    train: LabeledSet,
    dev: LabeledSet,
    *,
    plan: Plan,
    output: Path,
    params: dict[str, Any],
    tracking: TrackedRun,
    lm: dspy.LM,
    model_config: dict[str, Any],
    seed: int = 0,
    threads: int = 1,
    prompt_lm: dspy.LM | None = None,
    reflection_lm: dspy.LM | None = None,
    traces: bool = False,
    register: str | None = None,
    progress: Progress = no_progress,
    log: Callable[[str], None] | None = None,
) -> CompileReport:
    """Compile `program` with `plan`'s optimizer and budget, score it on dev before and
    after, save it to `output` with a sidecar recording `params` and the scores, and log
    both files and the model (registered as `register`, when given) to `tracking`."""
    tracking.log_params(params)
    with progress("scoring dev (before)", len(dev.examples)) as advance:
        before = evaluate(program, dev, lm=lm, threads=threads, on_row=lambda row: advance())
    started = time.perf_counter()
    with (
        progress("compiling (LM calls)", plan.expected_lm_calls) as advance,
        tracking.traces(traces),
        dspy.context(lm=lm, callbacks=[*dspy.settings.callbacks, _CountLMCalls(advance)]),
        dspy.track_usage() as usage,
    ):
        compiled = compile_program(
            program,
            train.examples,
            dev.examples,
            optimizer=plan.optimizer,
            budget=plan.budget,
            seed=seed,
            threads=threads,
            prompt_lm=prompt_lm,
            reflection_lm=reflection_lm,
            log=log,
        )
    seconds = time.perf_counter() - started
    calls = sum(len(entries) for entries in usage.usage_data.values())
    with progress("scoring dev (after)", len(dev.examples)) as advance:
        after = evaluate(compiled, dev, lm=lm, threads=threads, on_row=lambda row: advance())
    gain = paired_difference(before.rows, after.rows)
    scores = {
        "dev_fidelity_before": before.summary["fidelity"],
        "dev_fidelity_after": after.summary["fidelity"],
        "dev_fidelity_ci95_before": before.summary["fidelity_ci95"],
        "dev_fidelity_ci95_after": after.summary["fidelity_ci95"],
        "dev_gain": gain,
        "compile_lm_calls": calls,
        "compile_seconds": round(seconds, 1),
    }
    sidecar = save_program(compiled, output, **params, scores=scores)
    tracking.log_metrics(
        {
            **{f"dev_{k}_before": v for k, v in numeric(before.summary).items()},
            **{f"dev_{k}_after": v for k, v in numeric(after.summary).items()},
            "dev_fidelity_gain": gain["gain"],
            "compile_lm_calls": calls,
            "compile_seconds": seconds,
        }
    )
    tracking.log_file(output, "program")
    tracking.log_file(sidecar, "program")
    tracking.log_json({"before": before.to_json(), "after": after.to_json()}, "dev_eval.json")
    tracking.log_program_model(output, model_config=model_config, registered_model_name=register)
    return CompileReport(before, after, gain, calls, seconds, output, sidecar, tracking.run_id)


def compile_params(
    plan: Plan,
    seed: int,
    settings: ProgramSettings,
    lm: LMSettings,
    train: LabeledSet,
    dev: LabeledSet,
    *,
    prompt_model: str | None = None,
    reflection_model: str | None = None,
    traces: bool = False,
) -> dict[str, Any]:
    """What a compile logs and its sidecar records about how it was made, scrubbed."""
    return scrub(
        {
            "optimizer": plan.optimizer,
            "budget": plan.budget,
            "expected_lm_calls": plan.expected_lm_calls,
            "seed": seed,
            "model": lm.model,
            "base_url": lm.base_url,
            "prompt_model": prompt_model,
            "reflection_model": reflection_model,
            "trainset": str(train.path),
            "trainset_sha256": train.sha256,
            "devset": str(dev.path),
            "devset_sha256": dev.sha256,
            "signature_hash": signature_hash(),
            "detector": settings.detector,
            "llm_extractor": settings.llm_extractor,
            "single_judge_fallback": settings.single_judge_fallback,
            "traces": traces,
        }
    )


def numeric(summary: dict[str, Any]) -> dict[str, float]:
    """The figures of an evaluation summary that MLflow can log as metrics."""
    return {k: v for k, v in summary.items() if isinstance(v, int | float)}
