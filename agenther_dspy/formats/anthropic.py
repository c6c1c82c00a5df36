"""Anthropic Messages logs: `tool_use` blocks in assistant messages, `tool_result` in user ones.

A record is a list of messages or an object with `messages`, an optional top-level `system`
(text or text blocks) and the optional record fields every chat format shares (`instruction`,
`reward`, `failure_reason`, `id`, `metadata`). Request fields such as `model` or `tools` are
kept in `metadata.extra_fields`. `thinking` blocks are kept in the message's extras.
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
    split_record,
    text_of,
    to_records,
)
from agenther_dspy.formats.openai import conversation_items

SYSTEM_INDEX = -1  # where the record's top-level `system` field shows up in message references
TOOL_USE_TYPES = ("tool_use", "server_tool_use")


def _blocks(raw: dict[str, Any], where: str) -> list[dict[str, Any]]:
    content = raw.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise RecordError(f"{where}: content is neither text nor a list of blocks")
    blocks = []
    for number, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise RecordError(f"{where}: block {number} is not an object with a type")
        blocks.append(block)
    return blocks


def _assistant(raw: dict[str, Any], index: int, where: str) -> list[Message]:
    texts: list[str] = []
    calls: list[ToolCall] = []
    extras: dict[str, Any] = {}
    for number, block in enumerate(_blocks(raw, where)):
        kind = block["type"]
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind in TOOL_USE_TYPES:
            name, arguments = block.get("name"), block.get("input", {})
            if not isinstance(name, str) or not name.strip():
                raise RecordError(f"{where}: {kind} block {number} has no name")
            if not isinstance(arguments, dict):
                arguments = {"input": arguments}
            call_id = block.get("id")
            calls.append(ToolCall(name, arguments, str(call_id) if call_id is not None else None))
        elif kind == "thinking":
            extras.setdefault("thinking", []).append(block.get("thinking", ""))
        else:
            extras.setdefault("other_blocks", []).append(block)
    other = {k: v for k, v in raw.items() if k not in ("role", "content") and v is not None}
    extras.update(other)
    return [Message("assistant", "\n".join(texts), calls, index=index, extras=extras)]


def _user(raw: dict[str, Any], index: int, where: str) -> list[Message]:
    messages: list[Message] = []
    texts: list[str] = []
    extras: dict[str, Any] = {}
    for number, block in enumerate(_blocks(raw, where)):
        kind = block["type"]
        if kind == "tool_result":
            call_id = block.get("tool_use_id")
            if call_id is None:
                raise RecordError(f"{where}: tool_result block {number} has no tool_use_id")
            text, non_text = text_of(block.get("content"), f"{where}, block {number}")
            result_extras: dict[str, Any] = {}
            if block.get("is_error"):
                result_extras["is_error"] = True
            if non_text:
                result_extras["non_text_content"] = non_text
            messages.append(
                Message("tool", text, tool_call_id=str(call_id), index=index, extras=result_extras)
            )
        elif kind == "text":
            texts.append(str(block.get("text", "")))
        else:
            texts.append(f"[{kind}]")
            extras.setdefault("non_text_content", []).append(block)
    extras.update({k: v for k, v in raw.items() if k not in ("role", "content") and v is not None})
    if texts or extras:
        messages.append(Message("user", "\n".join(texts), index=index, extras=extras))
    return messages


def anthropic_messages(raw_messages: list[Any], system: Any = None) -> list[Message]:
    """Anthropic messages in the neutral shape: one source message may give several."""
    messages: list[Message] = []
    if system:
        text, non_text = text_of(system, "system")
        extras = {"non_text_content": non_text} if non_text else {}
        messages.append(Message("system", text, index=SYSTEM_INDEX, extras=extras))
    for index, raw in enumerate(raw_messages):
        where = f"message {index}"
        if not isinstance(raw, dict):
            raise RecordError(f"{where}: expected an object, got {type(raw).__name__}")
        role = raw.get("role")
        if role == "assistant":
            messages.extend(_assistant(raw, index, where))
        elif role == "user":
            messages.extend(_user(raw, index, where))
        else:
            raise RecordError(f"{where}: role {role!r} is not user or assistant")
    return messages


def anthropic_conversation(data: Any) -> dict[str, Any]:
    """The `Trajectory` fields of one Anthropic-format record."""
    raw_messages, fields = split_record(data, "messages")
    messages = anthropic_messages(raw_messages, fields.get("system"))
    return chat_trajectory(messages, fields, known=("system",))


def read_anthropic(path: str | Path) -> Iterator[Record | InvalidRecord]:
    """Every conversation of an Anthropic message-log file, as a trajectory or a defect."""
    yield from to_records(anthropic_conversation, conversation_items(path), path)
