"""relabel_fidelity: each component responds to the defect it exists for, and only the
optional judge uses an LM."""

from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest
from dspy.utils import DummyLM

from agenther_dspy.eval import load_labeled, make_fidelity_metric, relabel_fidelity
from agenther_dspy.schema import Relabel

MINI = "tests/data/labeled_mini.jsonl"
GOOD = (
    "Search for copper wire suppliers and list each one's price per kg and minimum order, "
    "like MicroMetals at $5.30/kg."
)


@pytest.fixture(scope="module")
def copper_example():
    return load_labeled(MINI).examples[0]


def accepted(prompt: str) -> dspy.Prediction:
    relabel = Relabel(hindsight_prompt=prompt, is_valid_replay=True, confidence=0.9)
    return dspy.Prediction(status="accepted", relabel=relabel, reason="")


def score(example, prompt):
    return relabel_fidelity(example, accepted(prompt))


def test_a_faithful_prompt_scores_high_with_nothing_to_fix(copper_example):
    result = score(copper_example, GOOD)
    assert result.score > 0.8
    assert result.components["usable"] == 1.0 and result.components["no_leak"] == 1.0
    assert "Unusable" not in result.feedback


def test_invented_specifics_make_the_request_unusable(copper_example):
    result = score(copper_example, GOOD.replace("MicroMetals at $5.30/kg", "SteelCorp at $3.10/kg"))
    assert result.components["grounding"] < 0.5
    assert result.score == 0.0
    assert "SteelCorp" in result.feedback and "3.1" in result.feedback


def test_asking_again_for_the_missed_goal_is_a_leak(copper_example):
    result = score(copper_example, GOOD + " Only include suppliers under $5 per kilogram.")
    assert result.components["no_leak"] == 0.0 and result.score == 0.0
    assert "under $5 per kilogram" in result.feedback


def test_meta_words_and_reports_are_unusable(copper_example):
    meta = score(
        copper_example, GOOD.replace("Search for", "Using the agent trajectory, search for")
    )
    assert meta.score == 0.0 and "agent" in meta.feedback
    report = score(copper_example, "The search found MicroMetals at $5.30/kg and CopperDirect.")
    assert report.score == 0.0 and "report" in report.feedback


def test_copying_the_original_prompt_is_unusable(copper_example):
    original = copper_example.trajectory["original_prompt"]
    result = score(copper_example, original)
    assert result.score == 0.0
    assert "close to the original prompt" in result.feedback


@pytest.mark.parametrize(
    "request_text",
    [
        GOOD + " Have a great day! ###STOP###",
        "Find the copper wire suppliers for you. MicroMetals will cost $5.30 per kg.",
        "Yes, let's proceed with the copper order.",
        "Find the suppliers.",
    ],
)
def test_an_unusable_request_earns_no_more_than_declining(copper_example, request_text):
    declined = relabel_fidelity(
        copper_example, dspy.Prediction(status="rejected", relabel=None, reason="no")
    )
    result = score(copper_example, request_text)
    assert result.score == 0.0 <= declined.score
    assert result.feedback.startswith("Unusable")


def test_decision_gate(copper_example):
    unrecoverable = load_labeled(MINI).examples[2]
    rejected = dspy.Prediction(status="rejected", relabel=None, reason="judge said no")
    assert relabel_fidelity(unrecoverable, rejected).score == 1.0
    wrongly = relabel_fidelity(unrecoverable, accepted("Tell me about protein folding in 2024."))
    assert wrongly.score == 0.0 and wrongly.feedback.startswith("Decision")
    missed = relabel_fidelity(copper_example, rejected)
    assert missed.score == 0.0 and "judge said no" in missed.feedback
    assert "A faithful request exists" in missed.feedback


def test_deterministic(copper_example):
    assert score(copper_example, GOOD) == score(copper_example, GOOD)


def test_metric_signature_works_in_dspy_evaluate():
    class Fixed(dspy.Module):
        def forward(self, trajectory):
            return accepted(GOOD)

    examples = load_labeled(MINI).examples
    result = dspy.Evaluate(devset=examples, metric=relabel_fidelity, num_threads=1)(Fixed())
    assert 0 < result.score < 100
    assert len(result.results) == 3


def test_optional_judge_adds_a_component(copper_example):
    judge = DummyLM([{"fully_satisfied": False, "natural": True}])
    result = make_fidelity_metric(judge)(copper_example, accepted(GOOD))
    assert result.components["judge"] == 0.5
    assert 0 < result.score < score(copper_example, GOOD).score
    assert "does not fully satisfy" in result.feedback


def test_labeled_rows_are_validated_with_line_numbers(tmp_path):
    rows = [json.loads(line) for line in Path(MINI).read_text().splitlines()]
    del rows[0]["gold"]
    rows[1]["gold"]["failure_type"] = "bad_type"
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    labeled = load_labeled(path)
    assert len(labeled.examples) == 1
    reasons = [(bad.line, bad.reason.split(":")[0]) for bad in labeled.invalid]
    assert reasons == [(1, "gold"), (2, "failure_type"), (4, "Expecting value")]


def test_a_three_word_requirement_leaks_when_two_of_its_words_are_back():
    from agenther_dspy.eval.metric import leaks

    missed = ["number of suitcases allowed"]
    assert leaks("How many suitcases can I bring? Give me the number.", missed) == missed
    assert leaks("How many suitcases did I check in?", missed) == []
