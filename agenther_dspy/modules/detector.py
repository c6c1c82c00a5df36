"""Stage 1, failure detection: a rule-based detector that needs no LM, and its LM twin."""

from __future__ import annotations

import dspy

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
    """Keyword lexicon per failure type; severity = min(1, 0.3 + 0.1 × hits of the winner)."""

    def forward(self, trajectory: Trajectory, rendered: str = "") -> dspy.Prediction:
        hits = lexicon_hits(trajectory)
        winner = max(hits, key=lambda kind: hits[kind])  # ties keep the lexicon's order
        if hits[winner] == 0:
            winner = "wrong_result" if trajectory.failure_reason.strip() else "incomplete"
        recoverable = winner != "tool_error" and any(
            is_substantive(step.observation) for step in trajectory.steps
        )
        analysis = FailureAnalysis(
            failure_type=winner,
            severity_weight=min(1.0, 0.3 + 0.1 * hits[winner]),
            recoverable=recoverable,
            explanation=trajectory.failure_reason.strip() or "classified by keyword rules",
        )
        return dspy.Prediction(analysis=analysis)


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
        )
        analysis = FailureAnalysis(
            failure_type=out.failure_type,
            severity_weight=out.severity_weight,
            recoverable=out.recoverable,
        )
        return dspy.Prediction(analysis=analysis)
