"""How a run is shown to the LM stages: compact, bounded with the cut marked, deterministic."""

from __future__ import annotations

import json

from conftest import LABELED_DEV

from agenther_dspy.modules.render import (
    MIN_OBSERVATION_CHARS,
    RENDER_BUDGET_CHARS,
    bound,
    render_trajectory,
)
from agenther_dspy.schema import Trajectory


def _run(steps: int, observation: str) -> Trajectory:
    return Trajectory.model_validate(
        {
            "original_prompt": "p",
            "failure_reason": "r",
            "final_answer": "done",
            "steps": [
                {"thought": "t", "action_name": f"tool{i}", "action_input": {"i": i},
                 "observation": observation}
                for i in range(steps)
            ],
        }
    )  # fmt: skip


def test_bound_keeps_head_and_tail_and_says_how_much_was_cut():
    text = "HEAD " + "x" * 1000 + " TAIL"
    cut = bound(text, 100)
    assert len(cut) <= 100 and cut.startswith("HEAD") and cut.endswith("TAIL")
    assert "chars cut" in cut
    assert bound("short", 100) == "short"


def test_a_short_run_is_rendered_whole():
    text = render_trajectory(_run(2, "MicroMetals $5.30/kg"))
    assert text.count("MicroMetals $5.30/kg") == 2 and text.endswith("final answer: done")


def test_a_long_run_keeps_every_step_within_about_its_budget():
    run = _run(20, "BEGIN " + "y" * 3000 + " END")
    text = render_trajectory(run)
    assert len(text) <= RENDER_BUDGET_CHARS * 1.1
    assert all(f"[{i + 1}] tool{i} " in text for i in range(20))  # no step dropped
    assert text.count("BEGIN") == 20 and text.count("END") == 20  # head and tail kept
    # A run too long even for the floors keeps the floors rather than losing its evidence.
    huge = render_trajectory(_run(200, "z" * 3000))
    assert huge.count("z" * (MIN_OBSERVATION_CHARS // 2)) == 200


def test_real_runs_render_identically_every_time_and_shrink():
    rows = [json.loads(line) for line in LABELED_DEV.read_text().splitlines()[:5]]
    records = [
        Trajectory.model_validate({k: v for k, v in row.items() if k != "gold"}) for row in rows
    ]
    for run in records:
        text = render_trajectory(run)
        assert text == render_trajectory(run.model_copy(deep=True))
        full = sum(len(s.observation) for s in run.steps)
        assert len(text) < max(full, RENDER_BUDGET_CHARS * 1.2)
