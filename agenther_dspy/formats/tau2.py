"""tau2-bench simulation result files: one JSON object `{timestamp, info, tasks, simulations}`.

Each simulation is one run of an LLM agent against an LLM user simulator on one task, with
OpenAI-style messages (tool calls flat as `{id, name, arguments}`, tool results carrying the
call's `id`; the user may call device tools too). The conversion is the one used for the
project's converted tau2 data (see the data README):

- steps by the shared chat rules; a last agent reply nobody answered is still a step;
- `original_prompt` is the task's user scenario (what the simulated user was told), rendered
  as `Persona:` / `Reason for call:` / `Known info:` / `Unknown info:` / `Task instructions:`
  lines; the user's opening message, if it came before the agent spoke, is in
  `metadata.initial_user_message`;
- `failure_reason` is the reward verdict plus what the grader found unmet: database mismatch,
  information not communicated, failed environment assertions, expected actions not matched
  (with the closest call the agent made); empty for a success;
- `metadata` keeps the task, the grading, the run's models and costs, and the file's `info`
  (policy and simulator settings) under `run_info`. Each message's `raw_data` (the provider's
  response) is kept only for what it adds to the message: its copy of the message is not
  repeated.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from agenther_dspy.formats.agenther import InvalidRecord, Record
from agenther_dspy.formats.conversation import (
    Conversation,
    RecordError,
    build_trajectory,
    format_reward,
    to_records,
)
from agenther_dspy.formats.gold import AgentCall, call_text, unmatched_action
from agenther_dspy.formats.openai import message_from_openai
from agenther_dspy.formats.source import read_object_with_array

PROMPT_NOTE = (
    "original_prompt is rendered from the task's user_scenario (instructions given to the "
    "simulated user); the agent only sees the user's messages"
)
SCENARIO_LABELS = {
    "reason_for_call": "Reason for call",
    "known_info": "Known info",
    "unknown_info": "Unknown info",
    "task_instructions": "Task instructions",
}
MESSAGE_COPY_FIELDS = ("content", "role", "tool_calls", "function_call")


def render_scenario(scenario: Any) -> str | None:
    """The instructions the simulated user was given, as labelled lines."""
    if not isinstance(scenario, dict):
        return None
    lines = []
    if scenario.get("persona"):
        lines.append(f"Persona: {scenario['persona']}")
    instructions = scenario.get("instructions")
    if isinstance(instructions, str) and instructions.strip():
        lines.append(instructions.strip())
    elif isinstance(instructions, dict):
        for key, value in instructions.items():
            text = str(value).strip() if value is not None else ""
            if key == "domain" or not text:
                continue
            label = SCENARIO_LABELS.get(key, key.replace("_", " ").capitalize())
            lines.append(f"{label}: {text}")
    return "\n".join(lines) or None


def tau2_failure_reason(
    reward_info: dict[str, Any] | None, termination: Any, calls: list[AgentCall]
) -> str:
    """Why a simulation scored below 1, in the words of the converted tau2 data."""
    reward_info = reward_info or {}
    reward = reward_info.get("reward")
    if not isinstance(reward, int | float) or reward >= 1:
        return ""
    basis = reward_info.get("reward_basis") or []
    clauses = [
        f"reward {format_reward(reward)} (reward basis: {', '.join(basis)}; "
        f"termination: {termination})"
    ]
    db = reward_info.get("db_check") or {}
    if "DB" in basis and db.get("db_match") is False:
        clauses.append("final database state differs from the gold state (db_match=false)")
    for check in reward_info.get("communicate_checks") or []:
        if not check.get("met"):
            clauses.append(
                f"required information not communicated to the user: '{check.get('info')}'"
            )
    for check in reward_info.get("nl_assertions") or []:
        if not check.get("met"):
            clauses.append(f"natural-language assertion not met: {check.get('nl_assertion')}")
    for check in reward_info.get("env_assertions") or []:
        if not check.get("met"):
            assertion = check.get("env_assertion") or {}
            clauses.append(
                "environment assertion failed: "
                f"{call_text(assertion.get('func_name'), assertion.get('arguments'))} "
                f"on the {assertion.get('env_type')} side"
            )
    for check in reward_info.get("action_checks") or []:
        if not check.get("action_match"):
            action = check.get("action") or {}
            clauses.append(
                unmatched_action(
                    action.get("name", "?"),
                    action.get("arguments"),
                    calls,
                    requestor=action.get("requestor", "assistant"),
                    compare_args=action.get("compare_args"),
                )
            )
    if len(clauses) == 1:
        clauses.append(f"reward {reward:g}: task not completed as specified")
    return ". ".join(clauses)


def _raw_data_rest(raw_data: Any) -> dict[str, Any]:
    """What a message's `raw_data` says beyond the message itself."""
    if not isinstance(raw_data, dict):
        return {"raw_data": raw_data} if raw_data is not None else {}
    rest = {k: v for k, v in raw_data.items() if k not in ("message", "index") and v}
    message = raw_data.get("message")
    if isinstance(message, dict):
        rest.update({k: v for k, v in message.items() if k not in MESSAGE_COPY_FIELDS and v})
    return {"raw_data": rest} if rest else {}


def _messages(raw_messages: Any) -> list:
    if not isinstance(raw_messages, list) or not raw_messages:
        raise RecordError("no messages")
    messages = []
    for index, raw in enumerate(raw_messages):
        message = message_from_openai(raw, index, result_id_key="id", skip=frozenset({"raw_data"}))
        if isinstance(raw, dict):
            message.extras.update(_raw_data_rest(raw.get("raw_data")))
        messages.append(message)
    return messages


def tau2_simulation(
    sim: Any, tasks: dict[str, dict[str, Any]], file_fields: dict[str, Any], source: str
) -> dict[str, Any]:
    """The `Trajectory` fields of one simulation of a tau2 result file."""
    if not isinstance(sim, dict):
        raise RecordError(f"expected a simulation object, got {type(sim).__name__}")
    sim_id = str(sim.get("id") or "")
    try:
        task_id = sim.get("task_id")
        task = tasks.get(str(task_id))
        if task is None:
            raise RecordError(f"task {task_id!r} is not among the file's tasks")
        messages = _messages(sim.get("messages"))
        calls = [
            (c.name, c.arguments) for m in messages if m.role == "assistant" for c in m.tool_calls
        ]
        info = file_fields.get("info") or {}
        domain = (info.get("environment_info") or {}).get("domain_name")
        agent_model = (info.get("agent_info") or {}).get("llm")
        reward_info = sim.get("reward_info") or {}
        description = task.get("description") or {}
        metadata: dict[str, Any] = {
            "source": source,
            "domain": domain,
            "reward": reward_info.get("reward"),
            "task_id": task_id,
            "trial": sim.get("trial"),
            "simulation_id": sim_id,
            "agent_model": agent_model,
            "user_simulator_model": (info.get("user_info") or {}).get("llm"),
            "termination": sim.get("termination_reason"),
            "ticket": task.get("ticket"),
            "task_purpose": description.get("purpose") if isinstance(description, dict) else None,
            "evaluation_criteria": task.get("evaluation_criteria"),
            "reward_info": sim.get("reward_info"),
            "prompt_note": PROMPT_NOTE,
            "task_description": description,
            "user_scenario": task.get("user_scenario"),
        }
        used_task = {"id", "ticket", "description", "evaluation_criteria", "user_scenario"}
        if rest := {k: v for k, v in task.items() if k not in used_task and v is not None}:
            metadata["task_extra"] = rest
        used_sim = {"id", "task_id", "trial", "termination_reason", "reward_info", "messages"}
        metadata.update({k: v for k, v in sim.items() if k not in used_sim})
        metadata["run_info"] = info
        if rest := {k: v for k, v in file_fields.items() if k not in ("info", "tasks")}:
            metadata["file_fields"] = rest
        model_name = str(agent_model or "agent").split("/")[-1]
        conversation = Conversation(
            messages,
            goal=render_scenario(task.get("user_scenario")),
            failure_reason=tau2_failure_reason(reward_info, sim.get("termination_reason"), calls),
            trajectory_id=f"tau2-{model_name}-{domain}-task{task_id}-trial{sim.get('trial')}"
            f"-{sim_id[:8]}",
            metadata=metadata,
            final_reply_is_step=True,
        )
        return build_trajectory(conversation)
    except RecordError as error:
        raise RecordError(f"simulation {sim_id or '(no id)'}: {error}") from None


def read_tau2(path: str | Path) -> Iterator[Record | InvalidRecord]:
    """Every simulation of a tau2 result file, as a trajectory or a located defect."""
    fields, simulations = read_object_with_array(path, "simulations")
    raw_tasks = fields.get("tasks") or []
    tasks = {str(t.get("id")): t for t in raw_tasks if isinstance(t, dict)}
    build = partial(tau2_simulation, tasks=tasks, file_fields=fields, source=str(path))
    yield from to_records(build, simulations, path)
