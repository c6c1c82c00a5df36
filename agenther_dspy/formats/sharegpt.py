"""ShareGPT function-calling files as LLaMA-Factory reads them.

A record is `{"conversations": [{"from": ..., "value": ...}], "system"?, "tools"?}` with turns
`human`, `gpt`, `function_call` (value: JSON `{"name", "arguments"}`, or a list of them for
parallel calls), `observation` (the tool result) and `system`. `role` / `content` keys and the
tags `user`, `assistant`, `tool` are read too. Observations answer the open calls in order.
`tools` (a JSON string or list) is kept, parsed, in `metadata.tools`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import agenther_dspy.formats.conversation as chat
from agenther_dspy.formats.agenther import InvalidRecord, Record
from agenther_dspy.formats.source import iter_items

ROLE_TAGS = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "function_call": "function_call",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
    "system": "system",
}


def _calls(value: str, where: str) -> list[chat.ToolCall]:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise chat.RecordError(f"{where}: function_call value is not JSON ({error.msg})") from None
    calls = []
    for call in parsed if isinstance(parsed, list) else [parsed]:
        name = call.get("name") if isinstance(call, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise chat.RecordError(f"{where}: function_call has no name")
        calls.append(chat.ToolCall(name, chat.parse_arguments(call.get("arguments"))))
    return calls


def sharegpt_messages(turns: list[Any]) -> list[chat.Message]:
    messages = []
    for index, turn in enumerate(turns):
        where = f"turn {index}"
        if not isinstance(turn, dict):
            raise chat.RecordError(f"{where}: expected an object, got {type(turn).__name__}")
        tag = turn.get("from", turn.get("role"))
        value = turn.get("value", turn.get("content"))
        role = ROLE_TAGS.get(tag)  # type: ignore[arg-type]
        if role is None:
            raise chat.RecordError(f"{where}: unknown speaker {tag!r}")
        if not isinstance(value, str):
            raise chat.RecordError(f"{where}: value is not text")
        extras = {
            k: v
            for k, v in turn.items()
            if k not in ("from", "role", "value", "content") and v is not None
        }
        if role == "function_call":
            messages.append(
                chat.Message("assistant", "", _calls(value, where), index=index, extras=extras)
            )
        else:
            messages.append(chat.Message(role, value, index=index, extras=extras))
    return messages


def sharegpt_conversation(data: Any) -> dict[str, Any]:
    """The `Trajectory` fields of one ShareGPT record."""
    turns, fields = chat.split_record(data, "conversations")
    messages = sharegpt_messages(turns)
    system = fields.get("system")
    if isinstance(system, str) and system:
        messages.insert(0, chat.Message("system", system, index=-1))
    tools = fields.get("tools")
    metadata = {"tools": _parsed_tools(tools)} if tools else {}
    return chat.chat_trajectory(messages, fields, known=("system", "tools"), metadata=metadata)


def _parsed_tools(tools: Any) -> Any:
    """The record's `tools`, parsed when it is a JSON string (kept as it is when it is not)."""
    try:
        return json.loads(tools) if isinstance(tools, str) else tools
    except json.JSONDecodeError:
        return tools


def read_sharegpt(path: str | Path) -> Iterator[Record | InvalidRecord]:
    """Every conversation of a ShareGPT file, as a trajectory or a located defect."""
    yield from chat.to_records(sharegpt_conversation, iter_items(path), path)
