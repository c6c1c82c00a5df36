"""A boolean answer's confidence as the model's own probability, from token log probabilities.

Small models asked for a confidence number answer 0.9-1.0 whatever the run, so a threshold
on it separates nothing. The probability the model put on `True` where it wrote the answer
is a better-calibrated score: `p_true` reads it from the `logprobs` of the prediction,
which the embedded engine and OpenAI-compatible servers return when asked
(`LOGPROBS_CONFIG`). It looks for the field's name in the text the tokens spell, takes the
first word token after it, and normalises the mass of the `true`-like and `false`-like
alternatives there: P(true) = p(true) / (p(true) + p(false)). llama.cpp reports the model's
distribution before the grammar, so the two answers are compared with each other, not with
the whole vocabulary.

When the answer carries no log probabilities, or the field's token is not found, `p_true`
returns None and the caller keeps the verbalized number; `ConfidenceSource` names which one
a verdict used.
"""

from __future__ import annotations

import math
from typing import Any, Literal

ConfidenceSource = Literal["p_true", "verbalized"]

TOP_LOGPROBS = 10
# Per-call config that asks for the chosen tokens' log probabilities and the top alternatives.
LOGPROBS_CONFIG: dict[str, Any] = {"logprobs": True, "top_logprobs": TOP_LOGPROBS}


def p_true(logprobs: Any, field: str) -> float | None:
    """P(true) of the boolean output `field`, or None when the log probabilities do not say."""
    tokens = _tokens(logprobs)
    if not tokens:
        return None
    text = ""
    seen_field = False
    for token in tokens:
        text += str(token.get("token", ""))
        if not seen_field:
            seen_field = field in text
            continue
        word = str(token.get("token", "")).strip().strip("\"'").lower()
        if not word or not word[0].isalpha():
            continue  # the field's closing marks and white space, not its value
        return _normalised(token)
    return None


def _normalised(token: dict[str, Any]) -> float | None:
    alternatives = list(token.get("top_logprobs") or [])
    alternatives.append({"token": token.get("token", ""), "logprob": token.get("logprob")})
    mass = {"true": 0.0, "false": 0.0}
    seen: set[str] = set()
    for alt in alternatives:
        raw = str(alt.get("token", ""))
        if raw in seen or alt.get("logprob") is None:
            continue
        seen.add(raw)
        word = raw.strip().strip("\"'").lower()
        for answer in mass:
            if len(word) >= 2 and answer.startswith(word):
                mass[answer] += math.exp(float(alt["logprob"]))
    if mass["true"] == 0.0 and mass["false"] == 0.0:
        return None
    if mass["false"] == 0.0 or mass["true"] == 0.0:
        # The other answer is below the reported alternatives: bound it by the least of them.
        floor = min(float(a["logprob"]) for a in alternatives if a.get("logprob") is not None)
        missing = "false" if mass["false"] == 0.0 else "true"
        mass[missing] = math.exp(floor)
    return mass["true"] / (mass["true"] + mass["false"])


def _tokens(logprobs: Any) -> list[dict[str, Any]]:
    """The token list of DSPy's `logprobs` output (`{"content": [...]}` or the list itself)."""
    if logprobs is None:
        return []
    content = logprobs.get("content") if isinstance(logprobs, dict) else logprobs
    if content is None and hasattr(logprobs, "content"):
        content = logprobs.content
    return [t if isinstance(t, dict) else dict(t) for t in content or []]
