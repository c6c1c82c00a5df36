"""OpenAI chat logs: messages with `tool_calls` and `tool` messages.

A file holds one conversation per line, a JSON array of conversations, or one conversation as a
JSON array of messages. A conversation is a list of messages or an object with `messages` and,
optionally, `instruction`, `reward`, `failure_reason`, `id` and `metadata` (any other field is
kept in `metadata.extra_fields`). Legacy `function_call` / `function` messages are read too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agenther_dspy.formats.agenther import InvalidRecord, Record
from agenther_dspy.formats.conversation import (
    Message,
    RecordError,
    ToolCall,
    chat_trajectory,
    parse_arguments,
    split_record,
    text_of,
    to_records,
)
from agenther_dspy.formats.source import Item, iter_items

ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
CALL_FIELDS = {"id", "type", "function", "name", "arguments"}


def _tool_call(raw: Any, where: str) -> tuple[ToolCall, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise RecordError(f"{where}: a tool call is a {type(raw).__name__}, not an object")
    function = raw.get("function")
    # tau2 writes calls flat ({id, name, arguments}); the API nests them under `function`.
    source = function if isinstance(function, dict) else raw
    name = source.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RecordError(f"{where}: a tool call has no function name")
    call_id = raw.get("id")
    extra = {k: v for k, v in raw.items() if k not in CALL_FIELDS and v is not None}
    if raw.get("type") not in (None, "function"):
        extra["type"] = raw["type"]
    arguments = parse_arguments(source.get("arguments"))
    return ToolCall(name, arguments, str(call_id) if call_id is not None else None), extra


def message_from_openai(
    raw: Any, index: int, *, result_id_key: str = "tool_call_id", skip: frozenset[str] = frozenset()
) -> Message:
    """One OpenAI-style message in the neutral shape; unknown fields go to its extras.

    `result_id_key` names the field of a tool message that holds the call id (tau2 uses `id`);
    fields in `skip` are left out of the extras by the caller's choice (and said so by it).
    """
    where = f"message {index}"
    if not isinstance(raw, dict):
        raise RecordError(f"{where}: expected an object, got {type(raw).__name__}")
    role = ROLES.get(raw.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise RecordError(f"{where}: unknown role {raw.get('role')!r}")
    text, non_text = text_of(raw.get("content"), where)
    calls: list[ToolCall] = []
    call_extras: list[dict[str, Any]] = []
    raw_calls = raw.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise RecordError(f"{where}: tool_calls is not a list")
    for number, raw_call in enumerate(raw_calls):
        call, extra = _tool_call(raw_call, f"{where}, tool call {number}")
        calls.append(call)
        call_extras.append(extra)
    if isinstance(raw.get("function_call"), dict):
        call, extra = _tool_call(raw["function_call"], f"{where}, function_call")
        calls.append(call)
        call_extras.append(extra)
    used = {"role", "content", "tool_calls", "function_call"}
    result_id = None
    name = None
    if role == "tool":
        result_id = raw.get(result_id_key)
        name = raw.get("name")
        used |= {result_id_key, "name"}
    extras = {k: v for k, v in raw.items() if k not in used | skip and v is not None}
    if raw.get("role") in ("developer", "function"):
        extras["source_role"] = raw["role"]
    if non_text:
        extras["non_text_content"] = non_text
    if any(call_extras):
        extras["tool_call_extras"] = call_extras
    return Message(
        role=role,
        text=text,
        tool_calls=calls,
        tool_call_id=str(result_id) if result_id is not None else None,
        name=name if isinstance(name, str) else None,
        index=index,
        extras=extras,
    )


def is_message(data: Any) -> bool:
    return isinstance(data, dict) and "role" in data and "messages" not in data


def conversation_items(path: str | Path) -> Iterator[Item | InvalidRecord]:
    """The file's conversations; a top-level JSON array of messages is one conversation."""
    items = iter_items(path)
    for first in items:
        if isinstance(first, Item) and first.index == 0 and is_message(first.data):
            rest = list(items)
            broken = [item for item in rest if isinstance(item, InvalidRecord)]
            if broken:
                yield from broken
                return
            messages = [first.data, *(item.data for item in rest if isinstance(item, Item))]
            yield Item(messages, first.line, None)
            return
        yield first
        break
    yield from items


def openai_conversation(data: Any) -> dict[str, Any]:
    """The `Trajectory` fields of one OpenAI-format record."""
    raw_messages, fields = split_record(data, "messages")
    messages = [message_from_openai(raw, index) for index, raw in enumerate(raw_messages)]
    return chat_trajectory(messages, fields)


def read_openai(path: str | Path) -> Iterator[Record | InvalidRecord]:
    """Every conversation of an OpenAI chat-log file, as a trajectory or a located defect."""
    yield from to_records(openai_conversation, conversation_items(path), path)
