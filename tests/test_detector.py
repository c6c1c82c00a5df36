"""The hybrid detector's clear-cut rules on real labeled runs, and its hand-over to the LM."""

from __future__ import annotations

import dspy
from conftest import labeled_run
from dspy.utils import DummyLM

from agenther_dspy import HindsightRelabeler
from agenther_dspy.modules.detector import HybridFailureDetector, clear_cut


def test_every_call_errored_is_a_tool_error():
    analysis = clear_cut(labeled_run("whoandwhen-algorithm-generated-27"))
    assert analysis.failure_type == "tool_error" and not analysis.recoverable


def test_a_handoff_nobody_asked_for_is_settled_and_one_the_user_asked_for_is_not():
    silent = labeled_run(
        "tau2-grok-3-telecom-workflow-task[mobile_data_issue]bad_network_preference|bad_vpn|"
        "user_abroad_roaming_disabled_on[PERSONA:None]-trial0-0aae93b5"
    )
    analysis = clear_cut(silent)
    assert analysis.failure_type == "incomplete" and not analysis.recoverable
    assert "handed off" in analysis.explanation
    asked = labeled_run("tau2-grok-3-airline-task3-trial0-c594c77e")  # "Can you transfer me?"
    assert clear_cut(asked) is None


def test_an_action_whose_own_answer_records_otherwise_did_not_do_it():
    """The agent changed the flights "to economy"; the reservation it got back still says
    basic economy, so the log does not show the change it asked for."""
    analysis = clear_cut(labeled_run("taubench-gpt-4o-airline-task22-trial1"))
    assert analysis.failure_type == "wrong_result" and not analysis.recoverable
    assert "cabin: economy asked, basic_economy recorded" in analysis.explanation


def test_a_clean_run_goes_to_the_lm_and_a_clear_cut_one_does_not():
    clean = labeled_run("tau2-grok-3-airline-task3-trial0-c594c77e")
    lm = DummyLM([{"failure_type": "incomplete", "severity_weight": 0.6, "recoverable": True}])
    with dspy.context(lm=lm):
        analysis = HybridFailureDetector()(trajectory=clean, rendered="the run").analysis
    assert analysis.recoverable and len(lm.history) == 1

    errored = labeled_run("whoandwhen-algorithm-generated-27")
    with dspy.context(lm=DummyLM([])):
        prediction = HindsightRelabeler(detector="hybrid")(trajectory=errored)
    assert prediction.status == "skipped" and "tool calls errored" in prediction.reason
    names = [name for name, _ in HindsightRelabeler(detector="hybrid").named_predictors()]
    assert names[0] == "detector.predict"  # the LM detector's key: its demos serve both


def test_the_rules_judge_a_run_the_lm_cannot_answer_for():
    clean = labeled_run("tau2-grok-3-airline-task3-trial0-c594c77e")
    with dspy.context(lm=DummyLM([{"failure_type": "not a type"}] * 3)):
        analysis = HybridFailureDetector()(trajectory=clean, rendered="the run").analysis
    assert analysis.explanation.startswith("keyword rules; the LM could not answer")
