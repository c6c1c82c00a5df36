"""Run the program over a labeled set and measure it: fidelity (mean, per component, with a
bootstrap interval), acceptance precision and recall against `gold.recoverable`,
failure-type accuracy, diversity of the accepted prompts, and LM cost per trajectory."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import dspy

from agenther_dspy import text as tx
from agenther_dspy.eval.dataset import LabeledSet
from agenther_dspy.eval.metric import relabel_fidelity
from agenther_dspy.execution import execute

COMPONENTS = (
    "decision", "usable", "grounding", "no_leak", "anchoring", "naturalness", "closeness", "judge",
)  # fmt: skip


@dataclass
class EvalRow:
    trajectory_id: str
    gold_recoverable: bool
    gold_failure_type: str
    status: str
    stage: str
    reason: str
    failure_type: str | None
    hindsight_prompt: str
    confidence: float
    score: float
    components: dict[str, float]
    feedback: str
    lm_calls: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    # The annotation and every attempt with its verdicts, for `agenther-dspy review`.
    gold: dict[str, Any] = field(default_factory=dict)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    recoverable_p: float | None = None  # the LM detector's P(recoverable), when it had one


@dataclass
class EvalReport:
    rows: list[EvalRow]
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, "rows": [asdict(row) for row in self.rows]}


def _evaluate_one(
    program: dspy.Module,
    example: dspy.Example,
    lm: dspy.LM | None,
    metric: Callable,
    settings: dict[str, Any],
) -> EvalRow:
    """Run and score one example. A run that failed scores as what it is (an error, or a
    rejection for an unusable answer): it is counted, not hidden."""
    gold = example.gold
    run = execute(program, example.trajectory, lm=lm, settings=settings)
    prediction = run.prediction
    if prediction is None:
        prediction = dspy.Prediction(
            status=run.status, stage=run.stage, reason=run.reason, relabel=None
        )
    result = metric(example, prediction)
    analysis, relabel = run.analysis, run.relabel
    return EvalRow(
        trajectory_id=example.trajectory.get("trajectory_id", ""),
        gold_recoverable=bool(gold["recoverable"]),
        gold_failure_type=gold["failure_type"],
        status=run.status,
        stage=run.stage,
        reason=run.reason,
        failure_type=analysis.failure_type if analysis else None,
        recoverable_p=analysis.recoverable_p if analysis else None,
        hindsight_prompt=relabel.hindsight_prompt if relabel else "",
        confidence=run.confidence,
        score=float(result.score),
        # Any feedback metric will do (GEPA's contract asks only for score and feedback).
        components=dict(result.get("components") or {}),
        feedback=str(result.get("feedback") or ""),
        lm_calls=run.lm_calls,
        prompt_tokens=run.prompt_tokens,
        completion_tokens=run.completion_tokens,
        seconds=round(run.seconds, 3),
        gold=dict(gold),
        attempts=list(getattr(prediction, "attempts", None) or []),
    )


def bootstrap_interval(values: list[float], *, samples: int = 2000, seed: int = 0) -> list[float]:
    """A 95% percentile bootstrap interval of the mean."""
    if not values:
        return [0.0, 0.0]
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(samples))
    return [round(means[int(0.025 * samples)], 4), round(means[int(0.975 * samples) - 1], 4)]


def paired_difference(
    before: list[EvalRow], after: list[EvalRow], *, samples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """The mean fidelity gain of `after` over `before` on the same examples, with a 95%
    paired bootstrap interval: resampling examples (not scores) keeps each example's two
    scores together, so the interval reflects the change, not how hard the examples are."""
    scores = {row.trajectory_id: row.score for row in before}
    gains = [row.score - scores[row.trajectory_id] for row in after if row.trajectory_id in scores]
    if not gains:
        raise ValueError("the two evaluations share no example")
    interval = bootstrap_interval(gains, samples=samples, seed=seed)
    return {
        "examples": len(gains),
        "gain": round(statistics.fmean(gains), 4),
        "gain_ci95": interval,
        "beyond_noise": interval[0] > 0 or interval[1] < 0,
        "better": sum(g > 0 for g in gains),
        "worse": sum(g < 0 for g in gains),
    }


def _mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 4) if values else 0.0


def _half_width(interval: list[float]) -> float:
    return round((interval[1] - interval[0]) / 2, 4) if len(interval) == 2 else 0.0


def _balanced(rows: list[EvalRow]) -> float:
    groups = [[r.score for r in rows if r.gold_recoverable == kind] for kind in (True, False)]
    present = [statistics.fmean(group) for group in groups if group]
    return round(statistics.fmean(present), 4) if present else 0.0


def summarize(rows: list[EvalRow]) -> dict[str, Any]:
    n = len(rows)
    scores = [row.score for row in rows]
    accepted = [row for row in rows if row.status == "accepted"]
    true_positive = sum(row.gold_recoverable for row in accepted)
    recoverable = sum(row.gold_recoverable for row in rows)
    typed = [row for row in rows if row.failure_type is not None]
    prompts = [row.hindsight_prompt for row in accepted]
    summary: dict[str, Any] = {
        "examples": n,
        "fidelity": round(statistics.fmean(scores), 4) if scores else 0.0,
        "fidelity_ci95": bootstrap_interval(scores),
        "fidelity_ci95_half_width": _half_width(bootstrap_interval(scores)),
        # Few runs are clean demonstrations, so a program that accepts nothing scores high on
        # the plain mean; the balanced figure weighs recoverable and unrecoverable runs alike.
        "fidelity_recoverable": _mean([r.score for r in rows if r.gold_recoverable]),
        "fidelity_unrecoverable": _mean([r.score for r in rows if not r.gold_recoverable]),
        "fidelity_balanced": _balanced(rows),
        # Accepted requests the metric finds usable on a run that is a clean demonstration.
        "accepted_usable": sum(row.score > 0 for row in accepted),
        "accepted": len(accepted),
        "errors": sum(row.status == "error" for row in rows),
        "acceptance_precision": round(true_positive / len(accepted), 4) if accepted else 0.0,
        "acceptance_recall": round(true_positive / recoverable, 4) if recoverable else 0.0,
        "failure_type_accuracy": (
            round(sum(r.failure_type == r.gold_failure_type for r in typed) / len(typed), 4)
            if typed
            else 0.0
        ),
        "distinct_1": round(tx.distinct_n(prompts, 1), 4),
        "distinct_2": round(tx.distinct_n(prompts, 2), 4),
        "lm_calls_per_trajectory": round(statistics.fmean(r.lm_calls for r in rows), 2) if n else 0,
        "prompt_tokens_per_trajectory": round(statistics.fmean(r.prompt_tokens for r in rows))
        if n
        else 0,
        "completion_tokens_per_trajectory": (
            round(statistics.fmean(r.completion_tokens for r in rows)) if n else 0
        ),
        "seconds_per_trajectory": round(statistics.fmean(r.seconds for r in rows), 2) if n else 0,
    }
    for name in COMPONENTS:
        values = [row.components[name] for row in rows if name in row.components]
        if values:
            summary[f"component_{name}"] = round(statistics.fmean(values), 4)
    return summary


def evaluate(
    program: dspy.Module,
    labeled: LabeledSet | list[dspy.Example],
    *,
    lm: dspy.LM | None = None,
    metric: Callable = relabel_fidelity,
    threads: int = 1,
    on_row: Callable[[EvalRow], None] | None = None,
) -> EvalReport:
    """Run and score every example (a labeled set, or its examples) in the caller's DSPy
    context; `on_row` sees each row as it is scored."""
    examples = labeled.examples if isinstance(labeled, LabeledSet) else list(labeled)
    settings = dspy.settings.copy()  # the caller's, for the worker threads too

    def one(example: dspy.Example) -> EvalRow:
        row = _evaluate_one(program, example, lm, metric, settings)
        if on_row is not None:
            on_row(row)
        return row

    if threads <= 1:
        rows = [one(example) for example in examples]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            rows = list(pool.map(one, examples))
    return EvalReport(rows, summarize(rows))
