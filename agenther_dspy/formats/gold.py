"""Failure reasons from benchmark reward information: what was expected, what the agent did.

tau-bench and tau2 grade a run against expected ("gold") actions, required information and
environment assertions. A failure reason that names the unmet ones — and, for an expected call
the agent made with other arguments, which arguments differed — tells the relabeler what the
run did achieve far better than `reward 0.0` alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

# Tools that only read: an unmatched expected lookup is informational, not a wrong change.
READ_ONLY_PREFIXES = (
    "get_",
    "search_",
    "list_",
    "find_",
    "lookup_",
    "check_",
    "calculate",
    "think",
)
MAX_ARGUMENTS_CHARS = 300
MAX_VALUE_CHARS = 200

AgentCall = tuple[str, dict[str, Any]]


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def call_text(name: str, arguments: Any) -> str:
    text = dumps(arguments if arguments is not None else {})
    if len(text) > MAX_ARGUMENTS_CHARS:
        text = text[:MAX_ARGUMENTS_CHARS] + "..."
    return f"{name}({text})"


def value_text(value: Any) -> str:
    text = value if isinstance(value, str) else dumps(value)
    return text[:MAX_VALUE_CHARS] + "..." if len(text) > MAX_VALUE_CHARS else text


def is_read_only(name: str) -> bool:
    return name.startswith(READ_ONLY_PREFIXES)


def _differences(
    expected: dict[str, Any], used: dict[str, Any], keys: Iterable[str]
) -> list[tuple[str, Any, Any]]:
    return [(k, expected.get(k), used.get(k)) for k in keys if expected.get(k) != used.get(k)]


def unmatched_action(
    name: str,
    arguments: dict[str, Any] | None,
    agent_calls: Sequence[AgentCall],
    *,
    requestor: str = "assistant",
    compare_args: Sequence[str] | None = None,
) -> str:
    """One clause naming an expected action the run did not perform, and how close it came."""
    arguments = arguments or {}
    text = f"gold {requestor} action not matched: {call_text(name, arguments)}"
    if requestor != "assistant":
        return text
    if is_read_only(name):
        text += " [read-only lookup; informational]"
    same_tool = [used for called, used in agent_calls if called == name]
    if not same_tool:
        return text + " ; the agent never called this tool"
    keys = sorted(compare_args) if compare_args is not None else sorted(arguments)
    closest = min((_differences(arguments, used, keys) for used in same_tool), key=len)
    if not closest:
        return text + " ; the agent made this call, but not in a way the grader matched"
    described = "; ".join(
        f"{key}: expected {value_text(want)}, agent used {value_text(got)}"
        for key, want, got in closest
    )
    return text + " ; closest agent call differed in: " + described


def matches(expected: dict[str, Any], agent_calls: Sequence[AgentCall], name: str) -> bool:
    return any(called == name and used == expected for called, used in agent_calls)
