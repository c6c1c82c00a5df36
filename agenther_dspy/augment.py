"""Stage 4: turn an accepted relabeling into training rows. Deterministic, no LM.

Rows keep AgentHER's shape (`source_trajectory_id`, `format`, `hindsight_prompt`, `weight`,
`chosen`, `rejected`, `metadata`). `weight` is the run's severity weight from stage 1, for
loss or margin scaling downstream. Observations are written in full: these are training
targets, and a cut observation would teach the model to cut them.
"""

from __future__ import annotations

import json
from typing import Any

from agenther_dspy.schema import AugmentedSample, OutputFormat, Trajectory


def assistant_transcript(trajectory: Trajectory) -> str:
    """The agent's steps and final answer as one assistant message."""
    parts: list[str] = []
    for number, step in enumerate(trajectory.steps, 1):
        parts.append(f"Step {number}: {step.thought}".rstrip())
        args = json.dumps(step.action_input, ensure_ascii=False)
        parts.append(f"  Action: {step.action_name}({args})")
        parts.append(f"  Result: {step.observation}")
    if trajectory.final_answer:
        parts.append(f"\nFinal Answer: {trajectory.final_answer}")
    return "\n".join(parts)


def sharegpt_turns(trajectory: Trajectory, prompt: str) -> list[dict[str, str]]:
    """A multi-turn conversation: each action an assistant turn, each observation its own turn."""
    turns = [{"role": "user", "content": prompt}]
    for step in trajectory.steps:
        content = f"**Thought:** {step.thought}\n**Action:** {step.action_name}"
        if step.action_input:
            content += f"\n**Input:** {json.dumps(step.action_input, ensure_ascii=False)}"
        turns.append({"role": "assistant", "content": content})
        turns.append({"role": "observation", "content": step.observation})
    if trajectory.final_answer:
        turns.append({"role": "assistant", "content": trajectory.final_answer})
    return turns


def build_sample(
    trajectory: Trajectory,
    hindsight_prompt: str,
    output_format: OutputFormat | str,
    *,
    weight: float,
    metadata: dict[str, Any] | None = None,
) -> AugmentedSample:
    output_format = OutputFormat(output_format)
    meta = {"original_prompt": trajectory.original_prompt, "num_steps": len(trajectory.steps)}
    meta.update(metadata or {})
    chosen: list[dict[str, str]]
    rejected: list[dict[str, str]] = []
    if output_format is OutputFormat.SHAREGPT:
        chosen = sharegpt_turns(trajectory, hindsight_prompt)
    else:
        answer = assistant_transcript(trajectory)
        chosen = [
            {"role": "user", "content": hindsight_prompt},
            {"role": "assistant", "content": answer},
        ]
        if output_format is OutputFormat.DPO:
            # Same run, two prompts: it succeeds at the hindsight one and failed the original.
            rejected = [
                {"role": "user", "content": trajectory.original_prompt},
                {"role": "assistant", "content": answer},
            ]
    return AugmentedSample(
        source_trajectory_id=trajectory.trajectory_id,
        format=output_format,
        hindsight_prompt=hindsight_prompt,
        weight=weight,
        chosen=chosen,
        rejected=rejected,
        metadata=meta,
    )


def sample_from_prediction(
    trajectory: Trajectory, prediction: Any, output_format: OutputFormat | str
) -> AugmentedSample | None:
    """The training row for one program result, or None when it was not accepted."""
    if prediction.status != "accepted":
        return None
    return build_sample(
        trajectory,
        prediction.relabel.hindsight_prompt,
        output_format,
        weight=prediction.analysis.severity_weight,
        metadata={
            "relabel_confidence": round(prediction.confidence, 4),
            "single_judge": prediction.single_judge,
            "failure_type": prediction.analysis.failure_type,
            "rationale": prediction.relabel.rationale,
        },
    )
