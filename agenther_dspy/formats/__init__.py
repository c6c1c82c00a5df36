"""Readers of agent-log formats into `Trajectory`, and writers of results.

Every reader takes a path and yields, in file order, a `Record` (a trajectory and where it came
from) or an `InvalidRecord` (where, and why it could not be read); only a file that cannot be
read at all raises `InputError`. `READERS` maps each format's name to its reader,
`detect_format` names the format of a file when its first record leaves no doubt, and
`open_reader` is the one entry point the commands use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from agenther_dspy.formats.agenther import (
    InputError,
    InvalidRecord,
    Record,
    read_trajectories,
)
from agenther_dspy.formats.anthropic import read_anthropic
from agenther_dspy.formats.openai import conversation_items, read_openai
from agenther_dspy.formats.sharegpt import read_sharegpt
from agenther_dspy.formats.source import Item, iter_items, read_head
from agenther_dspy.formats.tau2 import read_tau2
from agenther_dspy.formats.taubench import read_taubench
from agenther_dspy.schema import Trajectory

Reader = Callable[[str | Path], Iterator[Record | InvalidRecord]]


class InputFormat(StrEnum):
    AUTO = "auto"
    AGENTHER = "agenther"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    SHAREGPT = "sharegpt"
    TAU_BENCH = "tau-bench"
    TAU2 = "tau2"


READERS: dict[str, Reader] = {
    InputFormat.AGENTHER.value: read_trajectories,
    InputFormat.OPENAI.value: read_openai,
    InputFormat.ANTHROPIC.value: read_anthropic,
    InputFormat.SHAREGPT.value: read_sharegpt,
    InputFormat.TAU_BENCH.value: read_taubench,
    InputFormat.TAU2.value: read_tau2,
}

ANTHROPIC_BLOCKS = {"tool_use", "tool_result", "server_tool_use", "thinking", "redacted_thinking"}
OPENAI_ROLES = {"tool", "function", "system", "developer"}


def _chat_format(messages: list[Any], record: dict[str, Any]) -> tuple[str | None, str]:
    anthropic = "system" in record
    openai = False
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list) and any(
            isinstance(block, dict) and block.get("type") in ANTHROPIC_BLOCKS for block in content
        ):
            anthropic = True
        if message.get("role") in OPENAI_ROLES or any(
            message.get(key) for key in ("tool_calls", "function_call", "tool_call_id")
        ):
            openai = True
    if anthropic and openai:
        return None, "its messages mix OpenAI tool calls and Anthropic content blocks"
    if anthropic:
        return "anthropic", ""
    if openai:
        return "openai", ""
    return None, "its messages are plain user/assistant text, which openai and anthropic share"


def _classify(data: Any) -> tuple[str | None, str]:
    """The format one record looks like, or None and why it cannot be told."""
    if isinstance(data, list):
        return _chat_format(data, {})
    if not isinstance(data, dict):
        return None, f"its first record is a {type(data).__name__}"
    if "simulations" in data and "tasks" in data:
        return "tau2", ""
    if "traj" in data and ("task_id" in data or "info" in data):
        return "tau-bench", ""
    if "steps" in data and "original_prompt" in data:
        return "agenther", ""
    if "conversations" in data:
        return "sharegpt", ""
    if isinstance(data.get("messages"), list):
        return _chat_format(data["messages"], data)
    return None, f"its first record has none of the known fields (keys: {sorted(data)[:8]})"


def detect_format(path: str | Path) -> str:
    """The name of the file's format, judged from its first readable record.

    Raises `InputError` naming the reason when the file does not say which format it is
    (for example plain chat text, valid as both OpenAI and Anthropic logs).
    """
    path = Path(path)
    head = read_head(path) if path.is_file() else ""
    items = conversation_items(path) if head.startswith("[") else iter_items(path)
    first = next((item for item in items if isinstance(item, Item)), None)
    if first is None:
        raise InputError(f"{path}: cannot detect the format: no record could be read")
    name, why = _classify(first.data)
    if name is None:
        choices = ", ".join(READERS)
        raise InputError(
            f"{path}: cannot detect the format: {why}; name it with --from ({choices})"
        )
    return name


def open_reader(path: str | Path, fmt: str = "auto") -> Iterator[Record | InvalidRecord]:
    """The records of `path` read as `fmt` (a name in `READERS`, or "auto" to detect it)."""
    name = str(fmt.value if isinstance(fmt, InputFormat) else fmt)
    if name == InputFormat.AUTO.value:
        name = detect_format(path)
    reader = READERS.get(name)
    if reader is None:
        raise InputError(f"unknown input format {name!r}: expected one of {', '.join(READERS)}")
    return reader(path)


def run_reward(trajectory: Trajectory) -> float | None:
    """The run's reward as the log gave it, if it did."""
    metadata = trajectory.metadata
    for reward in (metadata.get("reward"), (metadata.get("extra_fields") or {}).get("reward")):
        if isinstance(reward, int | float) and not isinstance(reward, bool):
            return float(reward)
    return None


def is_failed(trajectory: Trajectory) -> bool:
    """Whether the run failed: reward below 1 where the log has a reward; otherwise assumed."""
    reward = run_reward(trajectory)
    return reward is None or reward < 1


@dataclass(frozen=True)
class Conversion:
    """What `convert_file` wrote and left out."""

    input_format: str
    written: int
    successful: int  # runs left out by `failed_only`
    invalid: int


def convert_file(
    path: str | Path,
    output: str | Path,
    fmt: str = "auto",
    *,
    failed_only: bool = False,
    on_invalid: Callable[[InvalidRecord], None] | None = None,
) -> Conversion:
    """Write the runs in `path` as AgentHER trajectories, one JSON line each, to `output`.

    The file appears whole or not at all: it is written beside `output` and renamed when
    done. `failed_only` leaves out the runs whose reward is 1.
    """
    output = Path(output)
    name = detect_format(path) if fmt in ("auto", InputFormat.AUTO) else str(fmt)
    written = successful = invalid = 0
    partial = output.with_name(output.name + ".partial")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("w", encoding="utf-8") as out:
            for record in open_reader(path, name):
                if isinstance(record, InvalidRecord):
                    invalid += 1
                    if on_invalid is not None:
                        on_invalid(record)
                elif failed_only and not is_failed(record.trajectory):
                    successful += 1
                else:
                    row = record.trajectory.model_dump(mode="json")
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    written += 1
        partial.replace(output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Conversion(name, written, successful, invalid)


__all__ = [
    "READERS",
    "Conversion",
    "InputError",
    "InputFormat",
    "InvalidRecord",
    "Reader",
    "Record",
    "convert_file",
    "detect_format",
    "is_failed",
    "open_reader",
    "read_anthropic",
    "read_openai",
    "read_sharegpt",
    "read_tau2",
    "read_taubench",
    "read_trajectories",
    "run_reward",
]
