"""The rule-based detector and extractor, which need no LM."""

from __future__ import annotations

from agenther_dspy.modules.detector import RuleFailureDetector, keyword_analysis
from agenther_dspy.modules.extractor import RuleOutcomeExtractor, named_values
from agenther_dspy.schema import AgentStep, Trajectory


def detect(trajectory):
    return RuleFailureDetector()(trajectory=trajectory).analysis


def test_tool_crash_is_not_recoverable(examples):
    analysis = detect(examples[2])  # search API timeouts and 503s
    assert analysis.failure_type == "tool_error"
    assert not analysis.recoverable


def test_run_with_real_results_is_recoverable_and_severity_follows_hits(examples):
    analysis = detect(examples[0])  # copper suppliers: found data, missed the price limit
    assert analysis.recoverable
    assert analysis.failure_type != "tool_error"
    assert 0.3 <= analysis.severity_weight <= 1.0


def test_severity_formula_counts_hits_of_the_winning_type():
    steps = [AgentStep(action_name="run", observation="Error: timeout. Traceback follows")]
    trajectory = Trajectory(original_prompt="do it", steps=steps, failure_reason="")
    assert detect(trajectory).explanation == "all 1 tool calls errored"  # a clear-cut rule
    analysis = keyword_analysis(trajectory)
    # "error:", "timeout", "traceback" → 3 hits → 0.3 + 0.3
    assert analysis.failure_type == "tool_error"
    assert abs(analysis.severity_weight - 0.6) < 1e-9
    many = " ".join(["error:", "traceback", "timeout", "timed out", "connection refused"] * 3)
    steps = [AgentStep(action_name="run", observation=many + " 404 not found rate limit")]
    run = Trajectory(original_prompt="x", steps=steps, failure_reason="")
    assert keyword_analysis(run).severity_weight == 1.0


def test_no_keywords_falls_back_on_the_failure_reason():
    steps = [AgentStep(action_name="lookup", observation="The capital of Australia is Canberra.")]
    with_reason = Trajectory(original_prompt="q", steps=steps, failure_reason="user wanted Sydney")
    assert detect(with_reason).failure_type == "wrong_result"
    assert (
        detect(Trajectory(original_prompt="q", steps=steps, failure_reason="")).failure_type
        == "incomplete"
    )


def test_extractor_keeps_evidenced_results_and_their_values(examples):
    outcome = RuleOutcomeExtractor()(trajectory=examples[0]).outcome
    assert len(outcome.achievements) == 3  # "Summary generated." is too short to count
    assert outcome.achievements[0].startswith("step 1 (web_search): Found 5 results")
    assert "$5.30/kg" in outcome.key_observations
    assert outcome.limitations == examples[0].failure_reason


def test_extractor_skips_error_observations(examples):
    outcome = RuleOutcomeExtractor()(trajectory=examples[2]).outcome
    assert all("Error" not in a and "503" not in a for a in outcome.achievements)


def test_named_values_from_json_and_text():
    assert named_values('{"reservation_id": "ABC123", "flights": [{"price": 120}]}') == [
        "reservation_id: ABC123",
        "price: 120",
    ]
    assert named_values("Order total: $42.50, 3 items shipped. Status: sent") == [
        "Order total: $42.50",
        "Status: sent",
        "$42.50",
        "3 items",
    ]
