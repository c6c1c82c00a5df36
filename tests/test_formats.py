"""Foreign agent logs become trajectories by one set of rules, and every defect is located."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import AGENTHER_RUNS, DATA, EXAMPLES, REAL_FAILED, REAL_SUCCESS, TAU2_RAW, write_jsonl

from agenther_dspy.augment import chat_messages
from agenther_dspy.formats import (
    READERS,
    InputError,
    InvalidRecord,
    Record,
    detect_format,
    is_failed,
    open_reader,
    read_anthropic,
    read_openai,
    read_sharegpt,
    read_tau2,
    read_taubench,
    read_trajectories,
)
from agenther_dspy.formats.conversation import Conversation, Message, ToolCall, build_trajectory
from agenther_dspy.formats.tau2 import tau2_failure_reason

TAUBENCH = DATA / "taubench_retail_results.json"
OPENAI = DATA / "openai_chats.jsonl"
ANTHROPIC = DATA / "anthropic_messages.jsonl"
SHAREGPT = DATA / "sharegpt_function_calls.json"
# Where the converted rows came from, which the raw result file itself does not record.
PROVENANCE = {"source", "source_commit", "variant_run"}


def records(reader, path) -> tuple[list, list[InvalidRecord]]:
    everything = list(reader(path))
    valid = [r.trajectory for r in everything if isinstance(r, Record)]
    return valid, [r for r in everything if isinstance(r, InvalidRecord)]


def tool_steps(trajectory):
    return [s for s in trajectory.steps if s.action_name != "respond"]


# --- tau2: the real result file, against the rows already converted from it ---------------


def test_tau2_steps_match_the_tool_calls_one_for_one():
    raw = json.loads(TAU2_RAW.read_text())
    trajectories, invalid = records(read_tau2, TAU2_RAW)
    assert not invalid and len(trajectories) == len(raw["simulations"]) == 5
    for trajectory, sim in zip(trajectories, raw["simulations"], strict=True):
        assert trajectory.metadata["simulation_id"] == sim["id"]
        results = {m["id"]: m["content"] for m in sim["messages"] if m["role"] == "tool"}
        calls = [
            (call["name"], call["arguments"], results[call["id"]])
            for m in sim["messages"]
            if m["role"] == "assistant"
            for call in m["tool_calls"] or []
        ]
        steps = [(s.action_name, s.action_input, s.observation) for s in tool_steps(trajectory)]
        assert steps == calls
        replies = [
            m["content"]
            for m in sim["messages"]
            if m["role"] == "assistant" and m["content"] and not m["tool_calls"]
        ]
        assert [
            s.action_input["content"] for s in trajectory.steps if s.action_name == "respond"
        ] == replies


@pytest.mark.needs_shared
def test_tau2_conversion_reproduces_the_converted_rows():
    converted = {}
    for path in (REAL_FAILED, REAL_SUCCESS):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            converted[row["metadata"]["simulation_id"]] = row
    trajectories, _ = records(read_tau2, TAU2_RAW)
    for trajectory in trajectories:
        mine = trajectory.model_dump(mode="json")
        theirs = converted[mine["metadata"]["simulation_id"]]
        for field in (
            "trajectory_id",
            "original_prompt",
            "steps",
            "final_answer",
            "failure_reason",
        ):
            assert mine[field] == theirs[field], (mine["trajectory_id"], field)
        for key, value in theirs["metadata"].items():
            if key not in PROVENANCE:
                assert mine["metadata"][key] == value, (mine["trajectory_id"], key)
    assert sum(1 for t in trajectories if t.failure_reason) == 2


@pytest.mark.needs_shared
def test_tau2_failure_reasons_match_every_converted_row():
    """The reward-to-reason rule, rerun on the grading kept in each row's metadata."""
    for path in (REAL_FAILED, REAL_SUCCESS):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            meta = row["metadata"]
            calls = [
                (s["action_name"], s["action_input"])
                for s in row["steps"]
                if s["action_name"] != "respond"
            ]
            reason = tau2_failure_reason(meta["reward_info"], meta["termination"], calls)
            assert reason == row["failure_reason"], row["trajectory_id"]


def test_tau2_keeps_what_has_no_place_in_a_step():
    trajectory = records(read_tau2, TAU2_RAW)[0][0]
    meta = trajectory.metadata
    assert meta["run_info"]["environment_info"]["domain_name"] == "airline"
    assert meta["run_info"]["environment_info"]["policy"].startswith("# Airline Agent Policy")
    assert {"agent_cost", "user_cost", "duration", "seed"} <= set(meta)
    first = meta["message_extras"][1]
    assert first["turn_idx"] == 1 and first["usage"]["completion_tokens"] == 66
    assert first["raw_data"] == {"finish_reason": "stop"}  # its copy of the message is not repeated


def test_broken_tau2_simulation_is_named_and_the_rest_still_read(tmp_path):
    data = json.loads(TAU2_RAW.read_text())
    data["simulations"][1]["task_id"] = "999"
    data["simulations"][3]["messages"][4]["role"] = "robot"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data, indent=2))
    everything = list(read_tau2(path))
    assert [type(r) for r in everything] == [Record, InvalidRecord, Record, InvalidRecord, Record]
    bad = [r for r in everything if isinstance(r, InvalidRecord)]
    assert (
        bad[0].reason == "simulation 154be1e3-9233-496b-9720-70016d27002f: "
        "task '999' is not among the file's tasks"
    )
    assert bad[1].reason.endswith("message 4: unknown role 'robot'")
    assert [r.index for r in bad] == [1, 3]
    lines = path.read_text().splitlines()
    assert all(lines[r.line - 1].strip() == "{" for r in everything)


def test_tau2_file_without_simulations_is_an_input_error(tmp_path):
    path = tmp_path / "tasks_only.json"
    path.write_text(json.dumps({"info": {}, "tasks": []}))
    with pytest.raises(InputError, match="no 'simulations' array"):
        list(read_tau2(path))


def test_user_side_device_actions_are_written_into_the_reply():
    """tau2's telecom user calls device tools; the converted rows show them in the reply."""
    messages = [
        Message("assistant", "Please reboot your phone.", index=0),
        Message("user", "", [ToolCall("reboot_device", {}, "u1")], index=1),
        Message("tool", "Restarting network services...", tool_call_id="u1", index=2),
        Message("user", "Okay, I've rebooted.", index=3),
        Message("assistant", "Now turn airplane mode off.", index=4),
        Message("user", "", [ToolCall("toggle_airplane_mode", {}, "u2")], index=5),
    ]
    built = build_trajectory(Conversation(messages, goal="Fix my data", final_reply_is_step=True))
    assert [s["observation"] for s in built["steps"]] == [
        "[user action] reboot_device({}) -> Restarting network services...\nOkay, I've rebooted.",
        "",
    ]
    assert built["metadata"]["steps_without_observation"] == [1]
    assert built["metadata"]["unplaced_messages"] == [
        {
            "index": 5,
            "role": "user",
            "content": "[user action] toggle_airplane_mode({})",
            "why": "user action with no result",
        }
    ]


# --- the converted real data and AgentHER's own files --------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(REAL_FAILED, marks=pytest.mark.needs_shared),
        pytest.param(REAL_SUCCESS, marks=pytest.mark.needs_shared),
        AGENTHER_RUNS,
        EXAMPLES,
    ],
)
def test_agenther_files_are_detected_and_read(path):
    assert detect_format(path) == "agenther"
    assert all(isinstance(r, Record) for r in open_reader(path))


@pytest.mark.needs_shared
def test_failed_only_keeps_runs_below_reward_one():
    failed = [r.trajectory for r in read_trajectories(REAL_FAILED)]
    succeeded = [r.trajectory for r in read_trajectories(REAL_SUCCESS)]
    assert all(is_failed(t) for t in failed) and not any(is_failed(t) for t in succeeded)
    examples = [r.trajectory for r in read_trajectories(EXAMPLES)]
    assert all(is_failed(t) for t in examples)  # no reward: kept


# --- tau-bench: a results file written by hand in its (v1) schema --------------------------


def test_taubench_results_convert_without_format_specific_fixes():
    raw = json.loads(TAUBENCH.read_text())
    trajectories, invalid = records(read_taubench, TAUBENCH)
    assert [t.metadata["task_id"] for t in trajectories] == [0, 7]
    for trajectory, run in zip(trajectories, raw, strict=False):
        assert trajectory.original_prompt == run["info"]["task"]["instruction"]
        calls = [
            (c["function"]["name"], json.loads(c["function"]["arguments"]))
            for m in run["traj"]
            if m["role"] == "assistant"
            for c in m["tool_calls"] or []
        ]
        assert [(s.action_name, s.action_input) for s in tool_steps(trajectory)] == calls
        assert trajectory.metadata["system_prompt"] == run["traj"][0]["content"]
        assert trajectory.metadata["initial_user_message"] == run["traj"][1]["content"]
    failed, succeeded = trajectories
    assert failed.steps[0].observation == "Sure, I'm Yusuf Rossi and my zip code is 19122."
    assert failed.steps[-1].observation == "Great, thanks for your help! ###STOP###"
    assert failed.failure_reason.startswith(
        "reward 0.0. final database state differs from the gold state (r_actions=0)"
    )
    assert (
        'closest agent call differed in: new_item_ids: expected ["7706410293", "7747408585"], '
        'agent used ["1340995114", "7747408585"]'
    ) in failed.failure_reason
    assert "get_product_details" in failed.failure_reason  # the thermostat was never looked up
    assert succeeded.failure_reason == "" and not is_failed(succeeded)
    # The run that crashed before any message is reported, not skipped.
    assert len(invalid) == 1 and invalid[0].index == 2
    assert "no messages in traj: the run failed with 'litellm.RateLimitError" in invalid[0].reason


# --- OpenAI chat logs ------------------------------------------------------------------------


def test_openai_records_with_and_without_instruction_and_reward():
    (booking, weather, currency, email), invalid = records(read_openai, OPENAI)
    assert not invalid
    assert booking.original_prompt.startswith("Book a table for two")
    assert booking.metadata["initial_user_message"].startswith("Find me an Italian place")
    assert booking.metadata["system_prompt"].startswith("You are a concierge")
    assert booking.failure_reason == "reward 0.0" and is_failed(booking)
    # Two calls in one message: the text is the first call's thought; results match by id.
    names = [s.action_name for s in booking.steps]
    assert names == ["search_restaurants", "book_table", "create_event"]
    assert booking.steps[1].thought.startswith("Trattoria Lusa has no 20:00 slot")
    assert booking.steps[2].thought == ""
    assert booking.steps[1].observation == '{"error": "slot no longer available"}'
    assert booking.steps[2].observation.startswith('{"event_id": "ev-881"')
    assert booking.final_answer.startswith("I couldn't book Trattoria Lusa")

    assert weather.original_prompt.startswith("What's the weather in Oslo")
    assert [s.action_name for s in weather.steps] == ["get_forecast", "respond", "get_forecast"]
    assert weather.steps[1].observation == "And the day after?"
    assert weather.steps[2].thought == "Let me check the day after."
    assert weather.failure_reason == "" and is_failed(weather)  # no reward: kept as failed

    assert currency.trajectory_id == "chat-0003" and not is_failed(currency)
    assert currency.metadata["extra_fields"] == {"model": "gpt-4o-mini"}
    assert email.steps[0].action_input["to"] == "dana@example.com"  # legacy function_call
    assert email.failure_reason == "the user wanted a new deadline mentioned"


def test_openai_single_conversation_array(tmp_path):
    messages = json.loads(OPENAI.read_text().splitlines()[1])
    path = tmp_path / "one.json"
    path.write_text(json.dumps(messages, indent=1))
    assert detect_format(path) == "openai"
    (only,), invalid = records(read_openai, path)
    assert not invalid and len(only.steps) == 3


def test_openai_nothing_is_dropped(tmp_path):
    conversation = [
        {"role": "user", "content": "Check order 7.", "name": "ana"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_order", "arguments": '{"id": 7'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c9", "content": "stray result"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "get_order", "arguments": "[7]"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c2", "content": "order 7: shipped"},
        {"role": "assistant", "content": "Order 7 has shipped.", "refusal": None},
    ]
    path = write_jsonl(tmp_path / "chat.jsonl", [conversation])
    (trajectory,), _ = records(read_openai, path)
    assert trajectory.steps[0].action_input == {"raw_arguments": '{"id": 7'}  # broken JSON kept
    assert trajectory.steps[1].action_input == {"arguments": [7]}
    assert trajectory.metadata["steps_without_observation"] == [0]
    assert trajectory.metadata["unplaced_messages"] == [
        {
            "index": 2,
            "role": "tool",
            "content": "stray result",
            "why": "tool result with no matching tool call",
        }
    ]
    assert trajectory.metadata["message_extras"] == [{"index": 0, "name": "ana"}]


def test_openai_defects_are_reported_with_line_and_reason(tmp_path):
    good = json.loads(OPENAI.read_text().splitlines()[2])
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            good,
            {"messages": "hello"},
            [{"role": "wizard", "content": "hi"}],
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": [{"id": "x", "function": {"arguments": "{}"}}]},
            ],
            [{"role": "user", "content": "hi"}],
            {"instruction": 3, "messages": []},
            {"reward": "high", "messages": good["messages"]},
            [
                {"role": "assistant", "content": "Hello!"},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "a", "function": {"name": "x", "arguments": "{}"}}],
                },
            ],
        ],
    )
    with path.open("a") as handle:
        handle.write("{broken\n")
    everything = list(read_openai(path))
    assert isinstance(everything[0], Record)
    assert [(r.line, r.reason) for r in everything if isinstance(r, InvalidRecord)] == [
        (2, "no 'messages' list in the record"),
        (3, "message 0: unknown role 'wizard'"),
        (4, "message 1, tool call 0: a tool call has no function name"),
        (5, "no steps: the log has no tool calls and no assistant replies"),
        (6, "instruction is a int, not text"),
        (7, "reward is 'high', not a number"),
        (8, "no goal: the record has no instruction and no user message"),
        (9, "invalid JSON: Expecting property name enclosed in double quotes"),
    ]
    assert str(everything[1]) == f"{path}:2: no 'messages' list in the record"


# --- Anthropic message logs --------------------------------------------------------------


def test_anthropic_tool_use_and_tool_result_blocks():
    (storage, usage), invalid = records(read_anthropic, ANTHROPIC)
    assert not invalid
    assert storage.original_prompt.startswith("I deleted /taxes/2023.pdf")
    assert (
        storage.metadata["system_prompt"] == "You are a support agent for a cloud storage service."
    )
    assert [(s.action_name, s.action_input) for s in storage.steps] == [
        ("get_account", {"email": "ana@example.com"}),
        ("restore_file", {"account_id": "acc-5521", "path": "/taxes/2023.pdf"}),
    ]
    assert storage.steps[0].thought == "Let me find your account first."
    assert storage.steps[1].observation == "RestoreError: file not in trash (retention 0 days)"
    extras = {e["index"]: e for e in storage.metadata["message_extras"]}
    assert extras[3]["thinking"] == [
        "Free plan with zero retention: the restore will probably fail, but try."
    ]
    assert extras[4]["is_error"] is True
    assert set(storage.metadata["extra_fields"]) == {"model", "max_tokens", "tools"}
    assert storage.failure_reason == "reward 0.0"
    assert storage.final_answer.startswith("I'm sorry: on the free plan")
    assert [s.action_name for s in usage.steps] == ["get_usage", "respond"]
    assert usage.steps[1].observation == "Can you free some space?"


def test_anthropic_defects_are_reported(tmp_path):
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            [{"role": "system", "content": "x"}],
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"text": "no type"}]},
            ],
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {}}]},
            ],
            [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}],
        ],
    )
    assert [r.reason for r in read_anthropic(path)] == [
        "message 0: role 'system' is not user or assistant",
        "message 1: block 0 is not an object with a type",
        "message 1: tool_use block 0 has no name",
        "message 0: tool_result block 0 has no tool_use_id",
    ]


# --- ShareGPT (LLaMA-Factory) ----------------------------------------------------------------


def test_sharegpt_function_call_and_observation_turns():
    (weather, stocks), invalid = records(read_sharegpt, SHAREGPT)
    assert not invalid
    assert weather.steps[0].action_input == {"location": "Boston, MA", "unit": "celsius"}
    assert weather.metadata["tools"][0]["name"] == "get_current_weather"  # parsed from its string
    assert weather.metadata["system_prompt"] == "You are a helpful assistant with access to tools."
    # A parallel call: each observation answers the next open call.
    assert [(s.action_input, s.observation) for s in stocks.steps[:2]] == [
        ({"symbol": "AAPL"}, '{"symbol": "AAPL", "price": 227.5}'),
        ({"symbol": "MSFT"}, '{"error": "symbol not found"}'),
    ]
    assert (
        stocks.steps[2].action_name == "respond"
        and stocks.steps[2].observation == "Try MSFT again."
    )
    assert stocks.steps[3].action_input == {"symbol": "MSFT"}  # arguments given as a JSON string
    assert stocks.final_answer.startswith("MSFT is at $415.10")


def test_sharegpt_defects_are_reported(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            [
                {
                    "conversations": [
                        {"from": "human", "value": "hi"},
                        {"from": "function_call", "value": "get_weather(Boston)"},
                    ]
                },
                {"conversations": [{"from": "narrator", "value": "hi"}]},
                {"messages": []},
            ],
            indent=2,
        )
    )
    reasons = [(r.index, r.reason) for r in read_sharegpt(path)]
    assert reasons == [
        (0, "turn 1: function_call value is not JSON (Expecting value)"),
        (1, "turn 0: unknown speaker 'narrator'"),
        (2, "no 'conversations' list in the record"),
    ]


# --- detection and the registry ------------------------------------------------------------


@pytest.mark.parametrize(
    "path,name",
    [
        (TAU2_RAW, "tau2"),
        (TAUBENCH, "tau-bench"),
        (OPENAI, "openai"),
        (ANTHROPIC, "anthropic"),
        (SHAREGPT, "sharegpt"),
    ],
)
def test_detect_format(path, name):
    assert detect_format(path) == name
    assert list(open_reader(path)) == list(READERS[name](path))


def test_ambiguous_or_unknown_files_are_clear_errors(tmp_path):
    plain = write_jsonl(
        tmp_path / "plain.jsonl",
        [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]],
    )
    with pytest.raises(InputError, match=r"plain user/assistant text.*--from"):
        detect_format(plain)
    assert isinstance(next(open_reader(plain, "anthropic")), Record)  # naming it works
    other = write_jsonl(tmp_path / "other.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(InputError, match="none of the known fields"):
        detect_format(other)
    with pytest.raises(InputError, match="unknown input format 'csv'"):
        open_reader(plain, "csv")
    with pytest.raises(InputError, match="no such file"):
        detect_format(tmp_path / "missing.json")


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("source", [EXAMPLES, TAU2_RAW])
def test_openai_round_trip(tmp_path, source):
    originals = [r.trajectory for r in open_reader(source)]
    rows = [
        {"messages": chat_messages(t, t.original_prompt), "failure_reason": t.failure_reason}
        for t in originals
    ]
    path = write_jsonl(tmp_path / "chats.jsonl", rows)
    back = [r.trajectory for r in read_openai(path)]
    for original, again in zip(originals, back, strict=True):
        assert again.original_prompt == original.original_prompt
        assert again.steps == original.steps
        assert again.final_answer == original.final_answer
        assert again.failure_reason == original.failure_reason


def test_agenther_round_trip(tmp_path):
    originals = [r.trajectory for r in read_tau2(TAU2_RAW)]
    path = write_jsonl(tmp_path / "t.jsonl", [t.model_dump(mode="json") for t in originals])
    assert [r.trajectory for r in read_trajectories(path)] == originals


# --- the convert command ---------------------------------------------------------------------


def cli(*args: str):
    return subprocess.run(
        [sys.executable, "-m", "agenther_dspy", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )


def test_convert_tau2_results(tmp_path):
    out = tmp_path / "tau2.jsonl"
    result = cli("convert", str(TAU2_RAW), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "Wrote 5 trajectories" in result.stdout and "(tau2)" in result.stdout
    converted = [r.trajectory for r in read_trajectories(out)]
    assert converted == [r.trajectory for r in read_tau2(TAU2_RAW)]

    result = cli("convert", str(TAU2_RAW), "-o", str(out), "--from", "tau2", "--failed-only")
    assert result.returncode == 0, result.stderr
    assert "Wrote 2 trajectories" in result.stdout and "3 successful runs left out" in result.stdout
    assert [r.trajectory.metadata["reward"] for r in read_trajectories(out)] == [0.0, 0.0]


def test_convert_reports_invalid_records_and_writes_the_rest(tmp_path):
    out = tmp_path / "tb.jsonl"
    result = cli("convert", str(TAUBENCH), "-o", str(out), "--from", "tau-bench")
    assert result.returncode == 1
    assert f"{TAUBENCH}:388 (item 2): no messages in traj" in result.stderr
    assert len(out.read_text().splitlines()) == 2


def test_convert_fatal_problems_exit_2(tmp_path):
    plain = write_jsonl(
        tmp_path / "plain.jsonl",
        [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]],
    )
    result = cli("convert", str(plain), "-o", str(tmp_path / "out.jsonl"))
    assert result.returncode == 2 and "cannot detect the format" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()
    result = cli("convert", str(tmp_path / "missing.json"), "-o", str(tmp_path / "out.jsonl"))
    assert result.returncode == 2 and "no such file" in result.stderr
