"""How a trajectory is shown to the LM stages.

Real agent runs are long, and every prompt token costs time on a local model. The rendering
is compact (one header line per step), bounds long texts with the cut marked in place so the
model knows something was left out, and is deterministic: every stage that reads one run
gets byte-identical text, which lets a local engine reuse its prompt cache across stages.
"""

from __future__ import annotations

import json

from agenther_dspy.schema import Trajectory

MAX_OBSERVATION_CHARS = 700
MAX_THOUGHT_CHARS = 300
MAX_INPUT_CHARS = 300
MAX_FINAL_ANSWER_CHARS = 1000
# A whole run is kept near this size: on a CPU, a prompt of 10,000+ characters costs a minute
# per stage, and a small model reads a long prompt no better. Longer runs keep every step but
# get tighter per-step bounds, never below the floors.
RENDER_BUDGET_CHARS = 6000
MIN_OBSERVATION_CHARS = 160
MIN_THOUGHT_CHARS = 80
MIN_INPUT_CHARS = 100


def bound(text: str, limit: int) -> str:
    """Keep the head and tail of `text` within `limit` chars, marking the cut in the middle."""
    text = text.strip()
    if len(text) <= limit:
        return text
    marker = f" […{len(text) - limit} chars cut…] "
    keep = max(limit - len(marker), 20)
    head = keep * 2 // 3
    return text[:head].rstrip() + marker + text[len(text) - (keep - head) :].lstrip()


def render_trajectory(trajectory: Trajectory, budget: int = RENDER_BUDGET_CHARS) -> str:
    """The run as numbered steps and its final answer, kept near `budget` characters."""
    text = _render(trajectory, MAX_OBSERVATION_CHARS, MAX_THOUGHT_CHARS, MAX_INPUT_CHARS)
    if len(text) <= budget or not trajectory.steps:
        return text
    # Share what is left after the final answer among the steps: 60% observation (the
    # evidence), 20% each to the input and the thought.
    final = min(len(trajectory.final_answer.strip()), MAX_FINAL_ANSWER_CHARS)
    per_step = max(budget - final, 0) // len(trajectory.steps)
    return _render(
        trajectory,
        min(MAX_OBSERVATION_CHARS, max(MIN_OBSERVATION_CHARS, per_step * 3 // 5)),
        min(MAX_THOUGHT_CHARS, max(MIN_THOUGHT_CHARS, per_step // 5)),
        min(MAX_INPUT_CHARS, max(MIN_INPUT_CHARS, per_step // 5)),
    )


def _render(trajectory: Trajectory, observation: int, thought: int, inputs: int) -> str:
    lines: list[str] = []
    for number, step in enumerate(trajectory.steps, 1):
        args = json.dumps(step.action_input, ensure_ascii=False, separators=(",", ":"))
        lines.append(f"[{number}] {step.action_name} {bound(args, inputs)}")
        if step.thought.strip():
            lines.append(f"  thought: {bound(step.thought, thought)}")
        lines.append(f"  observation: {bound(step.observation, observation)}")
    if trajectory.final_answer.strip():
        lines.append(f"final answer: {bound(trajectory.final_answer, MAX_FINAL_ANSWER_CHARS)}")
    return "\n".join(lines)
