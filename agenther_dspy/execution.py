"""One run of the program on one trajectory: the path that the batch runner, `evaluate` and
the MLflow model all take, so that they count, classify and report a run the same way.

`execute` runs the program inside its own `dspy.context`: the caller's DSPy settings (a
worker thread does not inherit the `dspy.context` of the thread that started it), the LM,
a fresh trace, and a usage tracker of its own that counts the LM calls and tokens of this
run alone, whatever the number of threads (DSPy reports usage to the tracker of the context
the call ran in). A tracker that was already active, such as a compile's, is told too.
(Counting with a DSPy callback would work as well, but any callback makes DSPy bind the
arguments of every module, adapter and LM call with `inspect`: about 1.5 ms of CPU per run.)

Every failure becomes an `Execution` with a status: a bad answer (`ANSWER_ERRORS`) rejects
the run, anything else is an error. The stage is the one the program tagged the exception
with.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dspy
from dspy.utils.usage_tracker import UsageTracker

from agenther_dspy.modules.stages import ANSWER_ERRORS, stage_of
from agenther_dspy.schema import FailureAnalysis, Relabel, Trajectory, Verdict

REASON_LIMIT = 300  # characters of an exception's message kept in a reason


@dataclass(frozen=True)
class Execution:
    """What one run of the program did and what it cost."""

    status: str  # accepted | rejected | skipped | error
    stage: str  # detect | extract | relabel | judge, or "" before any stage
    reason: str
    prediction: dspy.Prediction | None  # None when the run raised
    lm_calls: int  # answered by the LM; answers from DSPy's cache are free and not counted
    prompt_tokens: int
    completion_tokens: int
    seconds: float

    @property
    def analysis(self) -> FailureAnalysis | None:
        return getattr(self.prediction, "analysis", None)

    @property
    def relabel(self) -> Relabel | None:
        """The accepted relabeling, or the best attempt of a rejected run."""
        return getattr(self.prediction, "relabel", None)

    @property
    def verdict(self) -> Verdict | None:
        return getattr(self.prediction, "verdict", None)

    @property
    def confidence(self) -> float:
        return float(getattr(self.prediction, "confidence", 0.0) or 0.0)

    @property
    def single_judge(self) -> bool:
        return bool(getattr(self.prediction, "single_judge", False))

    @property
    def attempts(self) -> int:
        return len(getattr(self.prediction, "attempts", None) or [])


class _RunUsage(UsageTracker):
    """DSPy's usage tracker for one run, also counting the LM calls it sees, and passing
    each one on to the tracker that was active before (if any)."""

    def __init__(self, outer: UsageTracker | None) -> None:
        super().__init__()
        self.calls = 0
        self.outer = outer

    def add_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        self.calls += 1
        super().add_usage(lm, usage_entry)
        if self.outer is not None:
            self.outer.add_usage(lm, usage_entry)


def tokens(usage: Mapping[str, Mapping[str, Any]]) -> tuple[int, int]:
    """Prompt and completion tokens from DSPy's per-LM totals, whichever names the provider
    used (`prompt_tokens` / `completion_tokens`, or `input_tokens` / `output_tokens`)."""
    prompt = completion = 0
    for entry in usage.values():
        prompt += int(entry.get("prompt_tokens") or entry.get("input_tokens") or 0)
        completion += int(entry.get("completion_tokens") or entry.get("output_tokens") or 0)
    return prompt, completion


def short_error(error: BaseException, limit: int = REASON_LIMIT) -> str:
    """`Type: message` on one line, the message cut to `limit` characters."""
    text = " ".join(str(error).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"{type(error).__name__}: {text}"


def execute(
    program: dspy.Module,
    trajectory: Trajectory | dict[str, Any],
    *,
    lm: dspy.LM | None = None,
    settings: Mapping[str, Any] | None = None,
    keep_history: bool = False,
) -> Execution:
    """Run the program once on `trajectory` in the calling thread; never raises for a run.

    `settings`: the DSPy settings to run under (default: this thread's); capture them with
    `dspy.settings.copy()` in the thread that configured DSPy before handing work to others.
    `keep_history` keeps each LM call in the LM's history (DSPy keeps 10,000 per LM).
    """
    overrides = dict(settings if settings is not None else dspy.settings.copy())
    usage = _RunUsage(overrides.get("usage_tracker"))
    overrides["usage_tracker"] = usage
    overrides["trace"] = []  # per run, instead of DSPy's process-wide list
    if lm is not None:
        overrides["lm"] = lm
    if not keep_history:
        overrides["disable_history"] = True
    started = time.perf_counter()
    prediction = error = None
    with dspy.context(**overrides):
        try:
            prediction = program(trajectory=trajectory)
        except Exception as caught:  # an LM failure after its retries, or a bad answer
            error = caught
    prompt_tokens, completion_tokens = tokens(usage.get_total_tokens())
    cost: dict[str, Any] = {
        "lm_calls": usage.calls,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "seconds": time.perf_counter() - started,
    }
    if error is None:
        return Execution(
            status=prediction.status,
            stage=prediction.stage,
            reason=prediction.reason,
            prediction=prediction,
            **cost,
        )
    if isinstance(error, ANSWER_ERRORS):
        status, reason = "rejected", f"unparseable answer: {short_error(error)}"
    else:
        status, reason = "error", short_error(error)
    return Execution(status=status, stage=stage_of(error), reason=reason, prediction=None, **cost)
