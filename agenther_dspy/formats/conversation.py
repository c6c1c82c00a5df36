"""The rules that turn a chat log into a `Trajectory`, shared by every chat-format reader.

Each reader only translates its format into a list of `Message`s (roles system / user /
assistant / tool, tool calls with parsed arguments); the rules live here, once:

- each tool call is a step: `thought` is the text the assistant sent with the call (first call
  of a message only), the observation is the tool result with the call's id (or, in formats
  without ids, the next unanswered call's result);
- an assistant message without tool calls is a `respond` step with input `{"content": text}`
  whose observation is what the user said next; tool calls made by the user (device actions in
  tau2) are written into that reply as `[user action] name(args) -> result`;
- the goal is the record's instruction when it gives one (the user's opening messages then go
  to `metadata.initial_user_message`), else the first user message;
- the final answer is the last assistant reply; a last reply nobody answered is the final
  answer rather than a step, unless the reader asks for it as a step;
- nothing is dropped silently: system messages go to `metadata.system_prompt`, per-message
  fields with no place in a step to `metadata.message_extras`, messages that fit nowhere to
  `metadata.unplaced_messages`, and calls that never got a result are listed in
  `metadata.steps_without_observation`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agenther_dspy.formats.agenther import InvalidRecord, Record, describe_validation_error
from agenther_dspy.formats.source import Item
from agenther_dspy.schema import Trajectory

RESPOND = "respond"


class RecordError(ValueError):
    """One record cannot become a trajectory; the message is the reason, for the report."""


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str | None = None


@dataclass
class Message:
    """One chat message in the neutral shape the rules work on."""

    role: str  # system | user | assistant | tool
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None  # on a tool result: the tool's name, where the log gives it
    index: int = 0  # the message's position in the source log
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Conversation:
    """A record's messages plus what the record says about the run as a whole."""

    messages: list[Message]
    goal: str | None = None
    failure_reason: str = ""
    trajectory_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    final_reply_is_step: bool = False


def parse_arguments(raw: Any) -> dict[str, Any]:
    """A tool call's arguments as a dict, whether the log stored an object or a JSON string.

    Arguments the model wrote as broken JSON are kept verbatim under `raw_arguments`: a
    malformed call is part of what the run did.
    """
    if raw is None or raw == "":
        return {}
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            return {"raw_arguments": raw}
    return value if isinstance(value, dict) else {"arguments": value}


def text_of(content: Any, where: str) -> tuple[str, list[Any]]:
    """Message content as text, and the parts that are not text (images, files) as they are.

    A list of parts becomes its text parts joined by newlines, with a `[<type>]` marker where a
    non-text part stood; the caller keeps the non-text parts in the message's extras.
    """
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise RecordError(f"{where}: content is a {type(content).__name__}, not text")
    texts: list[str] = []
    others: list[Any] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            kind = part.get("type", "part") if isinstance(part, dict) else type(part).__name__
            texts.append(f"[{kind}]")
            others.append(part)
    return "\n".join(texts), others


def format_reward(reward: Any) -> str:
    return repr(float(reward)) if isinstance(reward, int | float) else str(reward)


def reward_reason(reward: Any, detail: str = "") -> str:
    """The failure reason a bare reward gives: empty for a success (reward ≥ 1)."""
    if not isinstance(reward, int | float) or isinstance(reward, bool):
        return detail
    if reward >= 1:
        return ""
    return f"reward {format_reward(reward)}" + (f". {detail}" if detail else "")


def _goal(
    conversation: Conversation, opening: list[Message]
) -> tuple[str, str | None, list[Message]]:
    """The goal, the opening user text kept beside it, and opening messages left unplaced."""
    if conversation.goal is not None and conversation.goal.strip():
        return conversation.goal, "\n".join(m.text for m in opening), []
    first = next((m for m in conversation.messages if m.role == "user" and m.text.strip()), None)
    if first is None:
        raise RecordError("no goal: the record has no instruction and no user message")
    return first.text, None, [m for m in opening if m is not first]


def build_trajectory(conversation: Conversation) -> dict[str, Any]:
    """The `Trajectory` fields for one conversation, by the rules in the module docstring."""
    steps: list[dict[str, Any]] = []
    open_calls: list[tuple[int, str | None, str]] = []  # (step index, call id, tool name)
    user_calls: list[tuple[str | None, str, dict[str, Any], int]] = []
    replies: dict[int, list[str]] = {}
    awaiting: int | None = None
    seen_agent = False
    last_reply = ""
    opening: list[Message] = []
    system: list[str] = []
    unplaced: list[dict[str, Any]] = []
    extras: list[dict[str, Any]] = []

    def misplaced(message: Message, why: str) -> None:
        unplaced.append(
            {"index": message.index, "role": message.role, "content": message.text, "why": why}
        )

    for message in conversation.messages:
        if message.extras:
            extras.append({"index": message.index, **message.extras})
        if message.role == "system":
            system.append(message.text)
        elif message.role == "assistant":
            seen_agent, awaiting = True, None
            for number, call in enumerate(message.tool_calls):
                thought = message.text if number == 0 else ""
                steps.append(
                    {
                        "thought": thought,
                        "action_name": call.name,
                        "action_input": call.arguments,
                        "observation": None,
                    }
                )
                open_calls.append((len(steps) - 1, call.id, call.name))
            if message.tool_calls:
                continue
            if not message.text.strip():
                misplaced(message, "empty assistant message")
                continue
            steps.append(
                {
                    "thought": "",
                    "action_name": RESPOND,
                    "action_input": {"content": message.text},
                    "observation": None,
                }
            )
            awaiting = len(steps) - 1
            replies[awaiting] = []
            last_reply = message.text
        elif message.role == "tool":
            user_call = _take_call(user_calls, message)
            if user_call is not None:
                name, arguments = user_call
                args = json.dumps(arguments, ensure_ascii=False)
                part = f"[user action] {name}({args}) -> {message.text}"
                if awaiting is None:
                    misplaced(message, "result of a user action with no agent reply before it")
                else:
                    replies[awaiting].append(part)
                continue
            step = _take_step(open_calls, message)
            if step is None:
                misplaced(message, "tool result with no matching tool call")
            else:
                steps[step]["observation"] = message.text
        elif message.role == "user":
            for call in message.tool_calls:
                user_calls.append((call.id, call.name, call.arguments, message.index))
            if not message.text:
                continue
            if not seen_agent:
                opening.append(message)
            elif awaiting is not None:
                replies[awaiting].append(message.text)
            else:
                misplaced(message, "user message with no agent reply before it")
        else:
            raise RecordError(f"message {message.index}: unknown role {message.role!r}")

    for _, name, arguments, index in user_calls:
        text = f"[user action] {name}({json.dumps(arguments, ensure_ascii=False)})"
        unplaced.append(
            {"index": index, "role": "user", "content": text, "why": "user action with no result"}
        )
    if not steps:
        raise RecordError("no steps: the log has no tool calls and no assistant replies")
    goal, initial_user_message, left_over = _goal(conversation, opening)
    unplaced = [
        {"index": m.index, "role": m.role, "content": m.text, "why": "opening user message"}
        for m in left_over
    ] + unplaced

    for index, parts in replies.items():
        steps[index]["observation"] = "\n".join(parts) if parts else None
    last = steps[-1]
    if (
        not conversation.final_reply_is_step
        and len(steps) > 1
        and last["action_name"] == RESPOND
        and last["observation"] is None
    ):
        steps.pop()  # nobody answered it: it is the final answer, not an exchange
    no_result = [n for n, step in enumerate(steps) if step["observation"] is None]
    for n in no_result:
        steps[n]["observation"] = ""

    metadata = dict(conversation.metadata)
    if initial_user_message is not None:
        metadata["initial_user_message"] = initial_user_message
    if system:
        metadata["system_prompt"] = "\n\n".join(system)
    if unplaced:
        metadata["unplaced_messages"] = unplaced
    if extras:
        metadata["message_extras"] = extras
    if no_result:
        metadata["steps_without_observation"] = no_result
    return {
        "trajectory_id": conversation.trajectory_id,
        "original_prompt": goal,
        "steps": steps,
        "final_answer": last_reply,
        "failure_reason": conversation.failure_reason,
        "metadata": metadata,
    }


def _take_call(
    calls: list[tuple[str | None, str, dict[str, Any], int]], result: Message
) -> tuple[str, dict[str, Any]] | None:
    for position, (call_id, name, arguments, _) in enumerate(calls):
        if call_id is not None and call_id == result.tool_call_id:
            del calls[position]
            return name, arguments
    return None


def _take_step(open_calls: list[tuple[int, str | None, str]], result: Message) -> int | None:
    """The step a tool result answers: by call id, else the next open call (of its name)."""
    for position, (step, call_id, name) in enumerate(open_calls):
        if result.tool_call_id is not None:
            matches = call_id == result.tool_call_id
        else:
            matches = result.name is None or result.name == name
        if matches:
            del open_calls[position]
            return step
    return None


def split_record(data: Any, messages_key: str) -> tuple[list[Any], dict[str, Any]]:
    """A chat record's message list and its record-level fields.

    A record is either a bare list of messages or an object with the list under
    `messages_key` and, optionally, `instruction`, `reward`, `failure_reason`, `id` /
    `trajectory_id` and `metadata`; any other field is kept in `metadata.extra_fields`.
    """
    if isinstance(data, list):
        return data, {}
    if not isinstance(data, dict):
        raise RecordError(f"expected a list of messages or an object, got {type(data).__name__}")
    messages = data.get(messages_key)
    if not isinstance(messages, list):
        raise RecordError(f"no {messages_key!r} list in the record")
    return messages, {k: v for k, v in data.items() if k != messages_key}


def conversation_fields(fields: dict[str, Any], *, known: tuple[str, ...] = ()) -> dict[str, Any]:
    """Goal, failure reason, id and metadata from a chat record's record-level fields."""
    instruction = fields.get("instruction")
    if instruction is not None and not isinstance(instruction, str):
        raise RecordError(f"instruction is a {type(instruction).__name__}, not text")
    reward = fields.get("reward")
    if reward is not None and (not isinstance(reward, int | float) or isinstance(reward, bool)):
        raise RecordError(f"reward is {reward!r}, not a number")
    metadata = fields.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise RecordError("metadata is not an object")
    metadata = dict(metadata)
    if reward is not None:
        metadata["reward"] = reward
    taken = {"instruction", "reward", "failure_reason", "id", "trajectory_id", "metadata", *known}
    extra = {k: v for k, v in fields.items() if k not in taken}
    if extra:
        metadata.setdefault("extra_fields", {}).update(extra)
    given_reason = fields.get("failure_reason")
    reason = str(given_reason) if given_reason is not None else reward_reason(reward)
    return {
        "goal": instruction,
        "failure_reason": reason,
        "trajectory_id": str(fields.get("trajectory_id") or fields.get("id") or ""),
        "metadata": metadata,
    }


def chat_trajectory(
    messages: list[Message],
    fields: dict[str, Any],
    *,
    known: tuple[str, ...] = (),
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `Trajectory` fields of a chat record: its messages and its record-level fields
    (`conversation_fields`). `metadata`: what the reader made of its own `known` fields."""
    common = conversation_fields(fields, known=known)
    common["metadata"].update(metadata or {})
    return build_trajectory(Conversation(messages, **common))


def to_record(
    build: Callable[[Any], dict[str, Any]], item: Item, path: str | Path
) -> Record | InvalidRecord:
    """Build and validate one record; every way it can fail becomes an `InvalidRecord`."""
    file = str(path)
    try:
        data = build(item.data)
    except RecordError as error:
        return InvalidRecord(file, item.line, str(error), item.index)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        reason = f"malformed record ({type(error).__name__}: {error})"
        return InvalidRecord(file, item.line, reason, item.index)
    try:
        return Record(Trajectory.model_validate(data), file, item.line, item.index)
    except ValidationError as error:
        return InvalidRecord(file, item.line, describe_validation_error(error), item.index)


def to_records(
    build: Callable[[Any], dict[str, Any]], items: Iterable[Item | InvalidRecord], path: str | Path
) -> Iterator[Record | InvalidRecord]:
    """`to_record` for each item of a file; the items the file itself could not give pass on."""
    for item in items:
        yield item if isinstance(item, InvalidRecord) else to_record(build, item, path)
