"""The training-row writers: exact shapes, AgentHER's field names."""

from __future__ import annotations

import json

from agenther_dspy.augment import assistant_transcript, build_sample
from agenther_dspy.schema import AgentStep, Trajectory

TRAJ = Trajectory(
    trajectory_id="t1",
    original_prompt="Find flights under $100",
    steps=[
        AgentStep(
            thought="search",
            action_name="search",
            action_input={"q": "NYC"},
            observation="3 flights",
        ),
        AgentStep(action_name="pick", observation="AA12 at $120"),
    ],
    final_answer="Cheapest is AA12 at $120.",
    failure_reason="over budget",
)
PROMPT = "List the flights to NYC and the cheapest fare."


def test_transcript_reconstructs_every_step_and_the_final_answer():
    assert assistant_transcript(TRAJ) == (
        "Step 1: search\n"
        '  Action: search({"q": "NYC"})\n'
        "  Result: 3 flights\n"
        "Step 2:\n"
        "  Action: pick({})\n"
        "  Result: AA12 at $120\n"
        "\nFinal Answer: Cheapest is AA12 at $120."
    )


def test_sft_row():
    row = build_sample(TRAJ, PROMPT, "sft", weight=0.4).model_dump(mode="json")
    assert set(row) == {
        "source_trajectory_id",
        "format",
        "hindsight_prompt",
        "weight",
        "chosen",
        "rejected",
        "metadata",
    }
    assert row["format"] == "sft" and row["source_trajectory_id"] == "t1" and row["weight"] == 0.4
    assert row["chosen"] == [
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": assistant_transcript(TRAJ)},
    ]
    assert row["rejected"] == []
    assert row["metadata"]["original_prompt"] == TRAJ.original_prompt


def test_dpo_row_pairs_the_same_run_with_both_prompts():
    row = build_sample(TRAJ, PROMPT, "dpo", weight=0.7, metadata={"x": 1}).model_dump(mode="json")
    answer = {"role": "assistant", "content": assistant_transcript(TRAJ)}
    assert row["chosen"] == [{"role": "user", "content": PROMPT}, answer]
    assert row["rejected"] == [{"role": "user", "content": TRAJ.original_prompt}, answer]
    assert row["weight"] == 0.7 and row["metadata"]["x"] == 1


def test_sharegpt_row_gives_observations_their_own_turns():
    row = build_sample(TRAJ, PROMPT, "sharegpt", weight=1.0).model_dump(mode="json")
    assert [t["role"] for t in row["chosen"]] == [
        "user",
        "assistant",
        "observation",
        "assistant",
        "observation",
        "assistant",
    ]
    assert row["chosen"][1]["content"] == (
        '**Thought:** search\n**Action:** search\n**Input:** {"q": "NYC"}'
    )
    assert row["chosen"][2] == {"role": "observation", "content": "3 flights"}
    assert row["chosen"][-1] == {"role": "assistant", "content": TRAJ.final_answer}
    json.dumps(row)  # serialisable as one JSONL line
