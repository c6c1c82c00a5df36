"""Training rows from an accepted relabeling, once the program's four stages (detect,
extract, relabel, judge) are done. Deterministic, no LM.

Rows keep AgentHER's shape (`source_trajectory_id`, `format`, `hindsight_prompt`, `weight`,
`chosen`, `rejected`, `metadata`). `weight` is the run's severity weight from the detect
stage, for loss or margin scaling downstream. Observations are written in full: these are training
targets, and a cut observation would teach the model to cut them.
"""

from __future__ import annotations

import json
from typing import Any

from agenther_dspy.schema import AgentStep, AugmentedSample, OutputFormat, Trajectory


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


REPLY_ACTION = "respond"
# The shared system message of TRL preference rows when the log had none: TRL needs the
# conversations to share a non-empty prompt, and AgentHER pairs differ from the user turn on.
DEFAULT_AGENT_SYSTEM_PROMPT = (
    "You are an agent. Complete the user's request by calling the available tools, "
    "then answer the user."
)


def is_reply(step: AgentStep) -> bool:
    """A step that is a message to the user (`respond` with only a `content` input)."""
    return step.action_name == REPLY_ACTION and set(step.action_input) <= {"content"}


def chat_messages(
    trajectory: Trajectory, prompt: str, *, system: str | None = None
) -> list[dict[str, Any]]:
    """The run as an OpenAI chat conversation with real tool calls.

    Each tool step is an assistant message (its thought as content) with one `tool_calls`
    entry, whose arguments are a JSON string as in the OpenAI API, answered by a `tool`
    message with the same `tool_call_id`; each `respond` step is an assistant message followed
    by the user's reply; the final answer closes the conversation unless the last reply
    already was it.
    """
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    for number, step in enumerate(trajectory.steps, 1):
        if is_reply(step):
            messages.append(
                {"role": "assistant", "content": str(step.action_input.get("content", ""))}
            )
            if step.observation:
                messages.append({"role": "user", "content": step.observation})
            continue
        call_id = f"call_{number}"
        arguments = json.dumps(step.action_input, ensure_ascii=False)
        messages.append(
            {
                "role": "assistant",
                "content": step.thought,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": step.action_name, "arguments": arguments},
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call_id, "content": step.observation})
    last = trajectory.steps[-1]
    said_last = is_reply(last) and last.action_input.get("content") == trajectory.final_answer
    if trajectory.final_answer and not said_last:
        messages.append({"role": "assistant", "content": trajectory.final_answer})
    return messages


def _system_prompt(trajectory: Trajectory) -> str | None:
    system = trajectory.metadata.get("system_prompt")
    return system if isinstance(system, str) and system.strip() else None


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
    chosen: list[dict[str, Any]]
    rejected: list[dict[str, Any]] = []
    if output_format is OutputFormat.SHAREGPT:
        chosen = sharegpt_turns(trajectory, hindsight_prompt)
    elif output_format in (OutputFormat.OPENAI, OutputFormat.TRL_SFT):
        chosen = chat_messages(trajectory, hindsight_prompt, system=_system_prompt(trajectory))
    elif output_format is OutputFormat.TRL_DPO:
        # Same run, two prompts, as in `dpo`; the shared system message becomes TRL's prompt.
        system = _system_prompt(trajectory) or DEFAULT_AGENT_SYSTEM_PROMPT
        chosen = chat_messages(trajectory, hindsight_prompt, system=system)
        rejected = chat_messages(trajectory, trajectory.original_prompt, system=system)
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
        },
    )


def _shared_prefix(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> int:
    size = 0
    while size < min(len(first), len(second)) and first[size] == second[size]:
        size += 1
    return size


def export_row(sample: AugmentedSample) -> dict[str, Any]:
    """The JSON line to write for a sample, in the shape its format's consumer reads.

    `sft`, `dpo` and `sharegpt` rows are the sample itself (AgentHER's fields). `openai` rows
    are exactly `{"messages": [...]}`, what the fine-tuning API accepts. `trl-sft` rows are
    `{"messages"}` and `trl-dpo` rows `{"prompt", "chosen", "rejected"}` (the prompt being the
    messages both conversations share), each with `weight` and `source_trajectory_id`, which
    TRL's trainers drop as unused columns.
    """
    if sample.format is OutputFormat.OPENAI:
        return {"messages": sample.chosen}
    trace = {"weight": sample.weight, "source_trajectory_id": sample.source_trajectory_id}
    if sample.format is OutputFormat.TRL_SFT:
        return {"messages": sample.chosen, **trace}
    if sample.format is OutputFormat.TRL_DPO:
        shared = _shared_prefix(sample.chosen, sample.rejected)
        return {
            "prompt": sample.chosen[:shared],
            "chosen": sample.chosen[shared:],
            "rejected": sample.rejected[shared:],
            **trace,
        }
    return sample.model_dump(mode="json")
