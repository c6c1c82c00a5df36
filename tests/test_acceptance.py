"""AgentHER's acceptance algorithm, branch by branch, with DSPy's scripted DummyLM.

The program runs with the rule extractor here, so every LM call is a relabel attempt or a
second-judge call, and the scripted answers map one to one onto the algorithm's steps.
"""

from __future__ import annotations

import dspy
import pytest
from conftest import AGENTHER
from dspy.utils import DummyLM

from agenther_dspy import HindsightRelabeler
from agenther_dspy.modules.program import judge_required

PROMPT = "Which copper wire suppliers did you find, with their price per kg and MOQ?"


def relabel(confidence=0.9, valid=True, prompt=PROMPT):
    return {
        "hindsight_prompt": prompt,
        "is_valid_replay": valid,
        "confidence": confidence,
    }


def judge(confidence=0.9, valid=True):
    return {"is_valid": valid, "confidence": confidence}


def calls(lm):
    """(stage, temperature, rollout_id) of every request the LM received, in order."""
    out = []
    for entry in lm.history:
        system = entry["messages"][0]["content"]
        stage = "judge" if "1. `is_valid`" in system else "relabel"
        out.append((stage, entry["kwargs"].get("temperature"), entry["kwargs"].get("rollout_id")))
    return out


def run(trajectory, answers, **options):
    lm = DummyLM(answers)
    with dspy.context(lm=lm):
        prediction = HindsightRelabeler(**AGENTHER, llm_extractor=False, **options)(
            trajectory=trajectory
        )
    return prediction, lm


def test_first_attempt_accepted_with_mean_confidence(copper):
    prediction, lm = run(copper, [relabel(0.8), judge(0.6)])
    assert prediction.status == "accepted" and prediction.stage == "judge"
    assert prediction.relabel.hindsight_prompt == PROMPT
    assert prediction.confidence == pytest.approx(0.7)
    assert not prediction.single_judge
    assert calls(lm) == [("relabel", 0.3, 1), ("judge", 0.0, None)]


def test_retries_escalate_temperature_as_distinct_requests(copper):
    answers = [relabel(valid=False), relabel(0.2), relabel(0.9), judge(0.9)]
    prediction, lm = run(copper, answers)
    assert prediction.status == "accepted"
    assert calls(lm) == [
        ("relabel", 0.3, 1),
        ("relabel", 0.7, 2),
        ("relabel", 0.7, 3),
        ("judge", 0.0, None),
    ]
    assert [a["outcome"] for a in prediction.attempts] == [
        "relabeler marked the run not a valid replay",
        "confidence 0.20 below 0.50",
        "accepted",
    ]


JUDGE_REJECTS_ALL = [
    relabel(0.6, prompt="first"),
    judge(0.2, valid=False),
    relabel(0.7, prompt="second"),
    judge(0.3, valid=False),
    relabel(0.55, prompt="third"),
    judge(0.9, valid=False),
]


def test_judge_rejections_fall_back_to_best_single_judge_attempt(copper):
    prediction, lm = run(copper, JUDGE_REJECTS_ALL)
    assert prediction.status == "accepted"
    assert prediction.single_judge
    assert prediction.relabel.hindsight_prompt == "second"
    assert prediction.confidence == pytest.approx(0.7)
    assert prediction.reason.startswith("single-judge fallback")
    assert "confidence 0.30" in prediction.attempts[1]["outcome"]
    assert len(lm.history) == 6


def test_with_the_judge_required_its_rejections_reject_the_run(copper):
    prediction, lm = run(copper, JUDGE_REJECTS_ALL, single_judge_fallback=False)
    assert prediction.status == "rejected" and not prediction.single_judge
    assert "#2 second judge rejected (valid=False, confidence 0.30)" in prediction.reason
    assert "#3 second judge rejected (valid=False, confidence 0.90)" in prediction.reason
    assert prediction.relabel.hindsight_prompt == "second"  # the best attempt, for the record
    assert len(lm.history) == 6  # the same attempts: only the final rule differs


@pytest.mark.parametrize(
    "answers",
    [
        JUDGE_REJECTS_ALL,
        [relabel(0.45), relabel(0.3), relabel(0.1)],  # never judged: kept only by the fallback
        [relabel(0.8), judge(0.6)],  # accepted by both: the rule does not matter
    ],
)
def test_judge_required_rescores_a_run_as_the_program_without_fallback_answers(copper, answers):
    with_fallback, _ = run(copper, answers)
    without, _ = run(copper, answers, single_judge_fallback=False)
    derived = judge_required(with_fallback)
    for key in ("status", "stage", "reason", "confidence", "single_judge", "attempts"):
        assert derived[key] == without[key], key
    assert derived.relabel == without.relabel


def test_judge_that_says_invalid_never_accepts_even_when_confident(copper):
    prediction, _ = run(copper, [relabel(0.9), judge(0.95, valid=False)] * 3)
    assert prediction.single_judge  # only through the fallback


def test_low_confidence_between_fallback_and_threshold_is_kept_without_judge(copper):
    # 0.8θ = 0.4 ≤ c = 0.45 < θ = 0.5: never judged, kept as single-judge.
    prediction, lm = run(copper, [relabel(0.45), relabel(0.3), relabel(0.1)])
    assert prediction.status == "accepted" and prediction.single_judge
    assert prediction.stage == "relabel"
    assert prediction.confidence == pytest.approx(0.45)
    assert [c[0] for c in calls(lm)] == ["relabel"] * 3


def test_below_fallback_is_rejected_with_every_attempts_reason(copper):
    prediction, _ = run(copper, [relabel(0.39), relabel(0.1), relabel(0.2)])
    assert prediction.status == "rejected"
    assert prediction.reason.startswith("no acceptable relabeling in 3 attempts")
    assert "#1 confidence 0.39 below 0.50" in prediction.reason
    assert "#3 confidence 0.20 below 0.50" in prediction.reason


def test_invalid_replay_every_time_is_rejected_without_judging(copper):
    prediction, lm = run(copper, [relabel(0.9, valid=False)] * 3)
    assert prediction.status == "rejected"
    assert prediction.relabel is None
    assert all(stage == "relabel" for stage, _, _ in calls(lm))


def test_threshold_and_attempts_are_configurable(copper):
    prediction, lm = run(copper, [relabel(0.85), judge(0.85)], min_confidence=0.9, max_attempts=1)
    # c < θ = 0.9, but c ≥ 0.8θ = 0.72: kept as single-judge, no judge call.
    assert prediction.single_judge and len(lm.history) == 1


def test_severity_gate_skips_before_any_lm_call(copper):
    prediction, lm = run(copper, [], severity_threshold=0.95)
    assert prediction.status == "skipped" and prediction.stage == "detect"
    assert "below threshold 0.95" in prediction.reason
    assert prediction.outcome is None and lm.history == []


def test_irrecoverable_run_is_skipped(examples):
    prediction, lm = run(examples[2], [])
    assert prediction.status == "skipped"
    assert prediction.reason.startswith("not recoverable (tool_error)")
    assert lm.history == []


def test_a_separate_judge_model_answers_the_second_judge(copper):
    judge_lm = DummyLM([judge(0.8)])
    prediction, lm = run(copper, [relabel(0.9)], judge_lm=judge_lm)
    assert prediction.status == "accepted"
    assert [c[0] for c in calls(lm)] == ["relabel"]
    assert [c[0] for c in calls(judge_lm)] == ["judge"]


def test_lm_detector_and_extractor_feed_the_relabeler(copper):
    detect = {
        "failure_type": "constraint_violation",
        "severity_weight": 1.7,  # out of range: clamped
        "recoverable": True,
    }
    extract = {
        "achievements": ["listed 7 suppliers"],
        "key_observations": ["MicroMetals $5.30/kg"],
        "limitations": "none under $5/kg",
    }
    lm = DummyLM([detect, extract, relabel(0.9), judge(0.9)])
    with dspy.context(lm=lm):
        prediction = HindsightRelabeler(relabeler="free", detector="lm")(trajectory=copper)
    assert prediction.analysis.failure_type == "constraint_violation"
    assert prediction.analysis.severity_weight == 1.0
    assert prediction.outcome.key_observations == ["MicroMetals $5.30/kg"]
    assert prediction.status == "accepted"
    relabel_request = lm.history[2]["messages"][-1]["content"]
    assert "MicroMetals $5.30/kg" in relabel_request


def test_stage_predictor_names_are_stable():
    program = HindsightRelabeler(relabeler="free", detector="lm")
    names = [name for name, _ in program.named_predictors()]
    assert names == [
        "detector.predict",
        "extractor.predict",
        "relabeler.relabel",
        "relabeler.judge",
    ]


@pytest.mark.parametrize(
    "bad", [{"min_confidence": 1.5}, {"max_attempts": 0}, {"severity_threshold": -1}]
)
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        HindsightRelabeler(**bad)


def test_a_near_copy_of_the_original_prompt_is_never_accepted(copper):
    original = copper.original_prompt
    prediction, _ = run(copper, [relabel(0.95, prompt=original)] * 2 + [relabel(0.9), judge(0.9)])
    assert prediction.status == "accepted"
    assert prediction.relabel.hindsight_prompt == PROMPT
    assert prediction.attempts[0]["outcome"].startswith("near-copy of the original prompt")
