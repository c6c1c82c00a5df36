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


def bound(text: str, limit: int) -> str:
    """Keep the head and tail of `text` within `limit` chars, marking the cut in the middle."""
    text = text.strip()
    if len(text) <= limit:
        return text
    marker = f" […{len(text) - limit} chars cut…] "
    keep = max(limit - len(marker), 20)
    head = keep * 2 // 3
    return text[:head].rstrip() + marker + text[len(text) - (keep - head) :].lstrip()


def render_trajectory(trajectory: Trajectory) -> str:
    lines: list[str] = []
    for number, step in enumerate(trajectory.steps, 1):
        args = json.dumps(step.action_input, ensure_ascii=False, separators=(",", ":"))
        lines.append(f"[{number}] {step.action_name} {bound(args, MAX_INPUT_CHARS)}")
        if step.thought.strip():
            lines.append(f"  thought: {bound(step.thought, MAX_THOUGHT_CHARS)}")
        lines.append(f"  observation: {bound(step.observation, MAX_OBSERVATION_CHARS)}")
    if trajectory.final_answer.strip():
        lines.append(f"final answer: {bound(trajectory.final_answer, MAX_FINAL_ANSWER_CHARS)}")
    return "\n".join(lines)
