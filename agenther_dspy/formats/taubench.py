"""tau-bench (v1) result files: a JSON array of `{task_id, trial, reward, info, traj}`.

`traj` is the run's OpenAI messages (system = the domain wiki, then the user's opening message);
`info.task` holds the user's instruction, the expected actions and outputs, and
`info.reward_info` how the run was graded. The goal is `info.task.instruction`; the failure
reason is the reward, whether the final database matched (`r_actions`), which expected outputs
the agent never said, and which expected actions it did not make (with the closest call it did
make). A run that crashed (`info.error`, empty `traj`) is reported as an invalid record.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agenther_dspy.formats.agenther import InvalidRecord, Record
from agenther_dspy.formats.conversation import (
    Conversation,
    RecordError,
    build_trajectory,
    reward_reason,
    to_records,
)
from agenther_dspy.formats.gold import AgentCall, matches, unmatched_action
from agenther_dspy.formats.openai import message_from_openai
from agenther_dspy.formats.source import iter_items

RESPOND = "respond"


def taubench_failure_reason(
    reward: Any, reward_info: dict[str, Any] | None, task: dict[str, Any], calls: list[AgentCall]
) -> str:
    """Why a tau-bench run scored below 1, from its reward information and expected actions."""
    if not isinstance(reward, int | float) or reward >= 1:
        return ""
    clauses = []
    graded = (reward_info or {}).get("info") or {}
    if "r_actions" in graded and not graded["r_actions"]:
        clauses.append("final database state differs from the gold state (r_actions=0)")
    for output, said in (graded.get("outputs") or {}).items():
        if not said:
            clauses.append(f"required information not communicated to the user: '{output}'")
    for action in task.get("actions") or []:
        name, kwargs = action.get("name"), action.get("kwargs") or {}
        if not name or name == RESPOND or matches(kwargs, calls, name):
            continue
        clauses.append(unmatched_action(name, kwargs, calls))
    return reward_reason(reward, ". ".join(clauses))


def taubench_run(data: Any) -> dict[str, Any]:
    """The `Trajectory` fields of one tau-bench run."""
    if not isinstance(data, dict):
        raise RecordError(f"expected a run object, got {type(data).__name__}")
    info = data.get("info") or {}
    if not isinstance(info, dict):
        raise RecordError("info is not an object")
    traj = data.get("traj")
    if not traj:
        crash = f": the run failed with {info['error']!r}" if info.get("error") else ""
        raise RecordError(f"no messages in traj{crash}")
    if not isinstance(traj, list):
        raise RecordError("traj is not a list of messages")
    task = info.get("task") or {}
    if not isinstance(task, dict):
        raise RecordError("info.task is not an object")
    messages = [message_from_openai(raw, index) for index, raw in enumerate(traj)]
    calls = [(c.name, c.arguments) for m in messages if m.role == "assistant" for c in m.tool_calls]
    reward = data.get("reward")
    metadata: dict[str, Any] = {
        "task_id": data.get("task_id"),
        "trial": data.get("trial"),
        "reward": reward,
        "user_id": task.get("user_id"),
        "gold_actions": task.get("actions"),
        "gold_outputs": task.get("outputs"),
        "reward_info": info.get("reward_info"),
    }
    rest_of_task = {
        k: v for k, v in task.items() if k not in ("instruction", "user_id", "actions", "outputs")
    }
    if rest_of_task:
        metadata["task_extra"] = rest_of_task
    rest_of_info = {k: v for k, v in info.items() if k not in ("task", "reward_info")}
    if rest_of_info:
        metadata["info"] = rest_of_info
    rest = {
        k: v for k, v in data.items() if k not in ("task_id", "trial", "reward", "info", "traj")
    }
    if rest:
        metadata["extra_fields"] = rest
    instruction = task.get("instruction")
    conversation = Conversation(
        messages,
        goal=instruction if isinstance(instruction, str) else None,
        failure_reason=taubench_failure_reason(reward, info.get("reward_info"), task, calls),
        metadata=metadata,
    )
    return build_trajectory(conversation)


def read_taubench(path: str | Path) -> Iterator[Record | InvalidRecord]:
    """Every run of a tau-bench result file, as a trajectory or a located defect."""
    yield from to_records(taubench_run, iter_items(path), path)
