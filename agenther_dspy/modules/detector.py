"""Stage 1, failure detection: a rule-based detector, its LM twin, and the hybrid of both.

The hybrid lets rules settle the clear-cut runs, the ones no request could describe as a
clean demonstration, and asks the LM only about the rest (`clear_cut` lists the rules).
"""

from __future__ import annotations

import re

import dspy
from dspy.utils.exceptions import ContextWindowExceededError

from agenther_dspy.modules.calibration import LOGPROBS_CONFIG, p_true
from agenther_dspy.modules.facts import run_facts
from agenther_dspy.modules.policy import breaches
from agenther_dspy.modules.stages import ANSWER_ERRORS
from agenther_dspy.request_checks import USER_TURN_ACTIONS
from agenther_dspy.schema import FailureAnalysis, Trajectory
from agenther_dspy.signatures import DetectFailure

# Lower-case phrases that point at each failure type, matched as substrings of the whole
# run's text. Numbers are padded with spaces so "500kg" is not an HTTP 500.
FAILURE_LEXICON: dict[str, tuple[str, ...]] = {
    "tool_error": (
        "error:",
        "exception:",
        "traceback",
        "timeout",
        "timed out",
        "connection refused",
        " 404 ",
        "404 not found",
        " 500 ",
        "500 error",
        " 503 ",
        "503 service",
        "service unavailable",
        "rate limit",
    ),
    "incomplete": (
        "i could not",
        "i couldn't",
        "unable to",
        "no results",
        "failed to",
        "did not finish",
        "ran out of",
        "not completed",
        "incomplete",
    ),
    "hallucination": (
        "i believe",
        "probably",
        "it might be",
        "training data",
        "made up",
        "fabricated",
        "not supported by",
        "hallucinat",
    ),
    "constraint_violation": (
        "exceeds",
        "over budget",
        "above the limit",
        "outside the range",
        "instead of",
        "violat",
        "not allowed",
        "policy",
    ),
    "wrong_result": (
        "wrong",
        "incorrect",
        "does not match",
        "not matched",
        "mismatch",
        "assertion failed",
        "expected",
    ),
    "off_topic": (
        "unrelated",
        "off topic",
        "off-topic",
        "irrelevant",
        "different question",
    ),
}

ERROR_SIGNALS = ("traceback", "error:", "exception:", "errno", "status code: 5", "503 service")
MIN_SUBSTANTIVE_CHARS = 20


def looks_like_error(observation: str) -> bool:
    lowered = observation.lower()
    return lowered.lstrip().startswith("error") or any(s in lowered for s in ERROR_SIGNALS)


def is_substantive(observation: str) -> bool:
    """An observation that carries a result: long enough to say something, and not an error."""
    text = observation.strip()
    return len(text) >= MIN_SUBSTANTIVE_CHARS and not looks_like_error(text)


def lexicon_hits(trajectory: Trajectory) -> dict[str, int]:
    parts = [trajectory.failure_reason, trajectory.final_answer]
    for step in trajectory.steps:
        parts += [step.thought, step.observation]
    text = f" {' '.join(parts).lower()} "
    return {kind: sum(term in text for term in terms) for kind, terms in FAILURE_LEXICON.items()}


class RuleFailureDetector(dspy.Module):
    """The clear-cut rules (`clear_cut`) first; otherwise a keyword lexicon per failure type,
    with severity = min(1, 0.3 + 0.1 × hits of the winner)."""

    def forward(self, trajectory: Trajectory, rendered: str = "") -> dspy.Prediction:
        if analysis := clear_cut(trajectory):
            return dspy.Prediction(analysis=analysis)
        return dspy.Prediction(analysis=keyword_analysis(trajectory))


def keyword_analysis(trajectory: Trajectory) -> FailureAnalysis:
    """AgentHER's keyword rules: the failure type with the most lexicon hits."""
    hits = lexicon_hits(trajectory)
    winner = max(hits, key=lambda kind: hits[kind])  # ties keep the lexicon's order
    if hits[winner] == 0:
        winner = "wrong_result" if trajectory.failure_reason.strip() else "incomplete"
    recoverable = winner != "tool_error" and any(
        is_substantive(step.observation) for step in trajectory.steps
    )
    return FailureAnalysis(
        failure_type=winner,
        severity_weight=min(1.0, 0.3 + 0.1 * hits[winner]),
        recoverable=recoverable,
        explanation=trajectory.failure_reason.strip() or "classified by keyword rules",
    )


class LMFailureDetector(dspy.Module):
    """The DetectFailure signature answered by the configured LM."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict(DetectFailure)

    def forward(self, trajectory: Trajectory, rendered: str) -> dspy.Prediction:
        out = self.predict(
            trajectory=rendered,
            original_prompt=trajectory.original_prompt,
            failure_reason=trajectory.failure_reason or "(not given)",
            config=LOGPROBS_CONFIG,
        )
        analysis = FailureAnalysis(
            failure_type=out.failure_type,
            severity_weight=out.severity_weight,
            recoverable=out.recoverable,
            recoverable_p=p_true(getattr(out, "logprobs", None), "recoverable"),
        )
        return dspy.Prediction(analysis=analysis)


# The user asking to be passed on: a hand-off they asked for does not spoil the run.
_ASKED_HANDOFF = re.compile(
    r"\b(?:transfer|supervisor|manager|human|real person|representative)\b", re.IGNORECASE
)


def clear_cut(trajectory: Trajectory) -> FailureAnalysis | None:
    """The analysis of a run whose failure rules can settle, or None when it takes judgement.

    Each rule marks a run no request could describe as a clean demonstration:

    - nothing happened: no tool call and no final answer;
    - every tool call errored (`tool_error`);
    - an action broke its domain's policy (`modules.policy`: `constraint_violation`, or
      `hallucination` for a charge the agent misstated);
    - an action that changes state failed, or more than half of the calls errored
      (`tool_error` when most failed, else `incomplete`);
    - an action's own answer records an argument otherwise than asked (`wrong_result`: a
      change to economy whose reservation still says business is no change to economy);
    - the agent declined the user's request (`incomplete`);
    - the agent handed the user off without being asked to (`incomplete`).
    """
    facts = run_facts(trajectory)
    calls = [c for c in facts.calls if not c.is_handoff]
    failed = [c for c in calls if not c.succeeded]

    def verdict(kind: str, why: str) -> FailureAnalysis:
        return FailureAnalysis(
            failure_type=kind, severity_weight=1.0, recoverable=False, explanation=why
        )

    if not calls and not trajectory.final_answer.strip():
        return verdict("incomplete", "no tool call and no final answer")
    if calls and len(failed) == len(calls):
        return verdict("tool_error", f"all {len(calls)} tool calls errored")
    if broken := breaches(trajectory):
        return verdict(broken[0].failure_type, f"broke the domain's policy: {broken[0]}")
    if any(c.changes_state for c in failed) or 2 * len(failed) > len(calls) > 0:
        kind = "tool_error" if 2 * len(failed) > len(calls) else "incomplete"
        return verdict(kind, f"{len(failed)} of {len(calls)} tool calls errored: {failed[0].name}")
    if undone := next((c for c in calls if c.contradicted), None):
        return verdict("wrong_result", f"{undone.name} did not do it: {undone.contradicted[0]}")
    if refusal := next((f for f in facts.failures if f.startswith("agent declined")), ""):
        return verdict("incomplete", refusal)
    handoff = next((c for c in facts.calls if c.is_handoff), None)
    if handoff and not _handoff_asked(trajectory, handoff.step):
        return verdict("incomplete", f"handed off without being asked: {handoff.name}")
    return None


def _handoff_asked(trajectory: Trajectory, step: int) -> bool:
    """Whether the user asked to be passed on before step `step` (1-based)."""
    said = [
        s.observation[:400]
        for s in trajectory.steps[: step - 1]
        if s.action_name in USER_TURN_ACTIONS
    ]
    return any(_ASKED_HANDOFF.search(text) for text in said)


class HybridFailureDetector(LMFailureDetector):
    """Rules settle the clear-cut runs (`clear_cut`); the LM judges the rest. It keeps the LM
    detector's predictor, so demos compiled for one serve the other. A run the LM cannot
    answer for (an unparseable answer, or a log longer than its context) falls back to the
    keyword rules, so the run is still judged."""

    def forward(self, trajectory: Trajectory, rendered: str) -> dspy.Prediction:
        if analysis := clear_cut(trajectory):
            return dspy.Prediction(analysis=analysis)
        try:
            return super().forward(trajectory=trajectory, rendered=rendered)
        except (*ANSWER_ERRORS, ContextWindowExceededError) as error:
            analysis = keyword_analysis(trajectory)
            why = f"keyword rules; the LM could not answer ({type(error).__name__})"
            return dspy.Prediction(analysis=analysis.model_copy(update={"explanation": why}))
