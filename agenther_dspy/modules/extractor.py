"""Stage 2, outcome extraction: a rule-based extractor that needs no LM, and its LM twin."""

from __future__ import annotations

import json
import re

import dspy

from agenther_dspy.modules.detector import is_substantive
from agenther_dspy.modules.render import bound
from agenther_dspy.schema import ReplayOutcome, Trajectory
from agenther_dspy.signatures import ExtractOutcome

ACHIEVEMENT_CHARS = 200
MAX_ACHIEVEMENTS = 10  # the latest: a long run's results accumulate towards its end
VALUES_PER_STEP = 5
MAX_KEY_OBSERVATIONS = 30

# A number with its currency or unit ("$4.90/kg", "42 rows", "10kg", "2.0 GB").
_NUMBER = re.compile(r"[$€£]?\d[\d,]*(?:\.\d+)?(?:\s?(?:%|/\w+|[a-zA-Z]{1,5}\b))?")
# "Name: value" or "name = value" pairs, the value up to a separator.
_PAIR = re.compile(r"\b([A-Za-z][\w ]{1,30}?)\s*[:=]\s*([^,;\n]{1,60}?)(?=[,;\n]|\.(?!\d)|$)")


def _json_pairs(text: str) -> list[str]:
    """Scalar `key: value` pairs of a JSON observation, depth first."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return []
    pairs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str | int | float) and not isinstance(value, bool):
                    pairs.append(f"{key}: {value}")
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return pairs


def named_values(observation: str) -> list[str]:
    """Numbers with their units and named values from one observation, in order, deduplicated."""
    found = _json_pairs(observation.strip())
    if not found:
        found = [f"{k.strip()}: {v.strip()}" for k, v in _PAIR.findall(observation)]
        found += [m.group(0).strip() for m in _NUMBER.finditer(observation)]
    seen: dict[str, None] = {}
    for value in found:
        seen.setdefault(value, None)
    return list(seen)


class RuleOutcomeExtractor(dspy.Module):
    """Achievements from substantive non-error observations; their values as key observations."""

    def forward(self, trajectory: Trajectory, rendered: str = "") -> dspy.Prediction:
        achievements: list[str] = []
        key_observations: list[str] = []
        for number, step in enumerate(trajectory.steps, 1):
            if not is_substantive(step.observation):
                continue
            summary = bound(step.observation, ACHIEVEMENT_CHARS)
            achievements.append(f"step {number} ({step.action_name}): {summary}")
            for value in named_values(step.observation)[:VALUES_PER_STEP]:
                if value not in key_observations:
                    key_observations.append(value)
        outcome = ReplayOutcome(
            achievements=achievements[-MAX_ACHIEVEMENTS:],
            key_observations=key_observations[:MAX_KEY_OBSERVATIONS],
            limitations=trajectory.failure_reason.strip() or "the original goal was not met",
        )
        return dspy.Prediction(outcome=outcome)


class LMOutcomeExtractor(dspy.Module):
    """The ExtractOutcome signature answered by the configured LM."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict(ExtractOutcome)

    def forward(self, trajectory: Trajectory, rendered: str) -> dspy.Prediction:
        out = self.predict(trajectory=rendered, original_prompt=trajectory.original_prompt)
        outcome = ReplayOutcome(
            achievements=list(out.achievements),
            key_observations=list(out.key_observations),
            limitations=out.limitations,
        )
        return dspy.Prediction(outcome=outcome)
