"""Every output format loads in the library it is written for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EXAMPLES, TAU2_RAW, write_jsonl
from datasets import load_dataset, load_from_disk

from agenther_dspy.augment import (
    DEFAULT_AGENT_SYSTEM_PROMPT,
    build_sample,
    chat_messages,
    export_row,
)
from agenther_dspy.formats import read_tau2, read_taubench, read_trajectories
from agenther_dspy.formats.hf import CARD_JSON, PARQUET_PATH, write_hf_dataset
from agenther_dspy.schema import OutputFormat

TAUBENCH = Path(__file__).parent / "data" / "taubench_retail_results.json"
PROMPT = "Look up the user's membership and reservations, then transfer them to a human agent."

# TRL's dataset formats (trl docs, "Dataset formats and types"): conversational language
# modeling rows have `messages`; conversational preference rows `prompt`, `chosen`, `rejected`,
# each a list of {"role", "content"} messages. Other columns are dropped as unused by the
# trainers.
TRL_SFT_COLUMNS = {"messages"}
TRL_PREFERENCE_COLUMNS = {"prompt", "chosen", "rejected"}
# OpenAI chat fine-tuning JSONL: one {"messages": [...]} object per line.
OPENAI_ROLES = {"system", "user", "assistant", "tool"}
OPENAI_MESSAGE_KEYS = {"role", "content", "name", "weight", "tool_calls", "tool_call_id"}
OPENAI_ROW_KEYS = {"messages", "tools", "parallel_tool_calls"}


@pytest.fixture(scope="module")
def runs():
    tau2 = [r.trajectory for r in read_tau2(TAU2_RAW)]
    taubench = [r.trajectory for r in read_taubench(TAUBENCH) if hasattr(r, "trajectory")]
    return tau2 + taubench


def rows_for(runs, fmt: str) -> list[dict]:
    return [export_row(build_sample(t, PROMPT, fmt, weight=0.6)) for t in runs]


def check_openai_chat(row: dict) -> None:
    """The OpenAI chat fine-tuning schema, as the API validates it."""
    assert set(row) <= OPENAI_ROW_KEYS and isinstance(row["messages"], list)
    open_calls: set[str] = set()
    assert any(m["role"] == "assistant" for m in row["messages"])
    for message in row["messages"]:
        assert set(message) <= OPENAI_MESSAGE_KEYS, message.keys()
        assert message["role"] in OPENAI_ROLES
        content = message.get("content")
        if message["role"] == "assistant" and message.get("tool_calls"):
            assert content is None or isinstance(content, str)
            for call in message["tool_calls"]:
                assert set(call) == {"id", "type", "function"} and call["type"] == "function"
                assert set(call["function"]) == {"name", "arguments"}
                assert isinstance(call["function"]["name"], str) and call["function"]["name"]
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
                open_calls.add(call["id"])
        else:
            assert isinstance(content, str)
        if message["role"] == "tool":
            assert message["tool_call_id"] in open_calls  # answers a call made before it
            open_calls.discard(message["tool_call_id"])
        else:
            assert "tool_call_id" not in message


def is_conversation(messages) -> bool:
    return (
        isinstance(messages, list)
        and len(messages) > 0
        and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in messages)
    )


def test_openai_rows_follow_the_chat_fine_tuning_schema(runs):
    for trajectory, row in zip(runs, rows_for(runs, "openai"), strict=True):
        check_openai_chat(row)
        messages = row["messages"]
        calls = [m["tool_calls"][0] for m in messages if m.get("tool_calls")]
        tools = [s for s in trajectory.steps if s.action_name != "respond"]
        assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
            (s.action_name, s.action_input) for s in tools
        ]
        assert [m["content"] for m in messages if m["role"] == "tool"] == [
            s.observation for s in tools
        ]
        system = trajectory.metadata.get("system_prompt")
        assert (
            messages[0] == {"role": "system", "content": system}
            if system
            else messages[0]["role"] == "user"
        )
        assert {"role": "user", "content": PROMPT} in messages[:2]


def test_chat_messages_shape():
    trajectory = next(read_trajectories(EXAMPLES)).trajectory
    messages = chat_messages(trajectory, PROMPT)
    first = trajectory.steps[0]
    assert messages[0] == {"role": "user", "content": PROMPT}
    assert messages[1] == {
        "role": "assistant",
        "content": first.thought,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {
                    "name": first.action_name,
                    "arguments": json.dumps(first.action_input),
                },
            }
        ],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": first.observation}
    assert messages[-1] == {"role": "assistant", "content": trajectory.final_answer}
    assert len(messages) == 1 + 2 * len(trajectory.steps) + 1


def test_trl_sft_rows(runs):
    for row in rows_for(runs, "trl-sft"):
        assert set(row) >= TRL_SFT_COLUMNS and is_conversation(row["messages"])
        assert row["weight"] == 0.6 and row["source_trajectory_id"]
        check_openai_chat({"messages": row["messages"]})


def test_trl_dpo_rows_share_an_explicit_prompt(runs):
    for trajectory, row in zip(runs, rows_for(runs, "trl-dpo"), strict=True):
        assert set(row) >= TRL_PREFERENCE_COLUMNS
        for column in TRL_PREFERENCE_COLUMNS:
            assert is_conversation(row[column]), column
        system = trajectory.metadata.get("system_prompt") or DEFAULT_AGENT_SYSTEM_PROMPT
        assert row["prompt"] == [{"role": "system", "content": system}]
        # Same run, two goals: the hindsight one preferred, the original one rejected.
        assert row["chosen"][0] == {"role": "user", "content": PROMPT}
        assert row["rejected"][0] == {"role": "user", "content": trajectory.original_prompt}
        assert row["chosen"][1:] == row["rejected"][1:]


def test_existing_formats_are_written_as_before(runs):
    for fmt in ("sft", "dpo", "sharegpt"):
        sample = build_sample(runs[0], PROMPT, fmt, weight=0.6)
        assert export_row(sample) == sample.model_dump(mode="json")


@pytest.mark.parametrize("fmt", [f.value for f in OutputFormat])
def test_every_format_loads_with_datasets_from_jsonl(tmp_path, runs, fmt):
    rows = rows_for(runs, fmt)
    path = write_jsonl(tmp_path / f"{fmt}.jsonl", rows)
    loaded = load_dataset("json", data_files=str(path), split="train")
    assert loaded.num_rows == len(rows)
    assert set(loaded.column_names) == set(rows[0])


CARD = {
    "source_files": [str(TAU2_RAW), str(TAUBENCH)],
    "model": "openai/gpt-4o-mini",
    "program_hash": "3f9a1c2b7d4e",
    "min_confidence": 0.5,
    "severity_threshold": 0.3,
    "max_attempts": 3,
    "counts": {"accepted": 6, "rejected": 1, "skipped": 0},
    "output_format": "trl-dpo",
}


def without_nulls(value):
    """Arrow gives every message every key; missing ones come back as None."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


@pytest.mark.parametrize("fmt", ["trl-dpo", "openai", "sft"])
def test_hf_dataset_loads_back_from_arrow_and_parquet(tmp_path, runs, fmt):
    rows = rows_for(runs, fmt)
    out = write_hf_dataset(iter(rows), tmp_path / "ds", {**CARD, "output_format": fmt})
    from_disk = load_from_disk(str(out))
    from_parquet = load_dataset("parquet", data_files=str(out / PARQUET_PATH), split="train")
    for loaded in (from_disk, from_parquet):
        assert loaded.num_rows == len(rows)
        assert [without_nulls(r) for r in loaded.to_list()] == [without_nulls(r) for r in rows]
    if fmt == "trl-dpo":
        assert set(from_disk.column_names) >= TRL_PREFERENCE_COLUMNS


def test_dataset_card_states_how_the_rows_were_made(tmp_path, runs):
    out = write_hf_dataset(rows_for(runs, "trl-dpo"), tmp_path / "ds", CARD)
    card = (out / "README.md").read_text()
    assert card.startswith("---\nconfigs:\n- config_name: default\n")
    assert f"path: {PARQUET_PATH}" in card
    for fact in (str(TAU2_RAW), "openai/gpt-4o-mini", "3f9a1c2b7d4e", "`0.5`", "`0.3`", "`3`"):
        assert fact in card
    assert (
        "| θ (min_confidence" in card
        and "| δ (severity_threshold" in card
        and "| K (max_attempts" in card
    )
    assert "6 accepted, 1 rejected, 0 skipped" in card
    facts = json.loads((out / CARD_JSON).read_text())
    assert facts["rows"] == len(runs) and facts["counts"] == CARD["counts"]


def test_empty_hf_dataset_still_loads(tmp_path):
    out = write_hf_dataset([], tmp_path / "empty", {"columns": ["messages"]})
    loaded = load_from_disk(str(out))
    assert loaded.num_rows == 0 and loaded.column_names == ["messages"]
